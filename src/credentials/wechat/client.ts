import type { OAuthClient } from "./oauth-client.js";
import type { WechatClient } from "./wechat-client.js";

// The official-account / mini-program family reaches WeChat through this client.
declare module "../../core/kind.js" {
  interface UpstreamClients {
    readonly wechat: WechatClient;
    /** Web OAuth (/sns/oauth2/*): users' grants. */
    readonly oauth: OAuthClient;
  }
}

export type { OAuthClient, WechatClient };
