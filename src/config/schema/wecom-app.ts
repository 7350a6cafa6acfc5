import { z } from "zod";
import { bool, strictMapping, text } from "../../shared/schema.js";
import { appSecret, type ConfigEnvironment } from "./secret.js";
import { appId, offeredKinds } from "./wechat-app.js";

/**
 * A WeCom app (企业微信): the corp id, the app's agentid (absent for
 * corp-level secrets such as contacts sync) and the app's own secret. Two
 * apps of one corp are two entries: their tokens are never shared.
 */
export const wecomAppSchema = (environment: ConfigEnvironment) =>
  strictMapping({
    id: appId(),
    type: z.literal("wecom"),
    /** The corp id (ww…); it names the corp's shared quota in the ledger (and its Redis keys). */
    corpid: text().regex(
      /^[A-Za-z0-9_-]{1,64}$/,
      "the corp id as shown in the WeCom admin console (ww…): letters, digits, '_' or '-'",
    ),
    /** The app's AgentId; needed for the agent ticket (wx.agentConfig). */
    agentid: text()
      .regex(/^\d{1,12}$/, "the app's AgentId: digits, as shown in the WeCom admin console")
      .optional(),
    secret: appSecret(environment),
    prefetch: bool().prefault(true),
    kinds: offeredKinds("wecom", "access_token").optional(),
  }).transform(({ corpid, ...app }) => ({
    ...app,
    // The account's WeChat-side id, as the core names it.
    appid: corpid,
    tokenMode: "classic" as const,
  }));
