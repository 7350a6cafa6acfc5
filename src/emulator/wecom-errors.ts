import { createRid } from "./rid.js";

/**
 * WeCom's errmsg texts (facts §6.1, §10). WeCom's 40001 means a bad secret,
 * not a stale token. Texts marked "emulator wording" have no sourced errmsg.
 */
const WECOM_ERRMSG: Readonly<Record<number, string>> = {
  [-1]: "system busy",
  40001: "invalid secret", // emulator wording (doc: 不合法的secret参数)
  40013: "invalid corpid",
  40014: "invalid access_token",
  40056: "invalid agentid",
  40058: "invalid parameter type", // unknown ticket/get type (emulator choice)
  40091: "secret is invalid",
  41001: "access_token missing",
  41002: "corpid missing",
  41004: "corpsecret missing",
  42001: "access_token expired",
  43001: "require GET method",
  45009: "api freq out of limit",
  45033: "api concurrent out of limit",
  48002: "api forbidden",
  50003: "application is disabled", // emulator wording (doc: 应用已禁用)
  60020: "not allow to access from your ip",
  301002: "not allow operate another agent with this accesstoken", // emulator wording
};

/**
 * A WeCom error text as WeCom shapes it: the text, a hint id, the caller's
 * IP and the errcode lookup link (e.g. "not allow to access from your ip,
 * hint: [1700000000_12_abcd…], from ip: 1.2.3.4, more info at …?e=60020").
 * Every WeCom error names the caller's IP, so 60020's remedy can too (C10).
 */
export function wecomErrmsg(errcode: number, ip: string, nowMs: number, text?: string): string {
  const base = text ?? WECOM_ERRMSG[errcode] ?? `errcode ${errcode}`;
  const hint = createRid(nowMs).replaceAll("-", "_");
  return `${base}, hint: [${hint}], from ip: ${ip}, more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}`;
}
