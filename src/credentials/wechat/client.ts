import type { WechatClient } from "./wechat-client.js";

// The official-account / mini-program family reaches WeChat through this client.
declare module "../../core/kind.js" {
  interface UpstreamClients {
    readonly wechat: WechatClient;
  }
}

export type { WechatClient };
