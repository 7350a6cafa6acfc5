import type { ConfigEnvironment } from "./secret.js";
import { wechatApp } from "./wechat-app.js";

/** A WeChat mini program (小程序): the access token only. */
export const miniProgramSchema = (environment: ConfigEnvironment) =>
  wechatApp("mini_program", environment);
