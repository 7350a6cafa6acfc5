import type { ConfigEnvironment } from "./secret.js";
import { wechatApp } from "./wechat-app.js";

/** A WeChat official account (公众号): the access token, JS-SDK and card tickets. */
export const officialAccountSchema = (environment: ConfigEnvironment) =>
  wechatApp("official_account", environment);
