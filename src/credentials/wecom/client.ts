import type { WecomClient } from "./wecom-client.js";

// The WeCom family reaches WeCom's own host through this client.
declare module "../../core/kind.js" {
  interface UpstreamClients {
    readonly wecom: WecomClient;
  }
}

export type { WecomClient };
