import type { AccountTypeSpec } from "../../core/kind-registry.js";

/** A WeCom (企业微信) app: a corp id and one app's own secret (and its agentid, when it has one). */
export const wecomApp: AccountTypeSpec = {
  name: "wecom",
  label: "WeCom app",
  endpoints: [],
  // WeCom's limits count every app of a corp together (facts §6.2).
  quotaGroup: (account) => account.appid,
};
