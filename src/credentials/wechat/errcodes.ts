import type { ErrcodeCategory, ErrcodeTable } from "../../core/kind.js";

/**
 * How the official-account and mini-program APIs' errcodes read (facts file
 * §10). WeChat answers HTTP 200 with `{errcode, errmsg}` on failure, so the
 * errcode is the only reliable signal; errmsg is informative. Other families
 * (WeCom, the Open Platform) read the same numbers differently and have
 * their own tables.
 */
const CATEGORY: ReadonlyMap<number, ErrcodeCategory> = new Map<number, ErrcodeCategory>([
  [-1, "retryable"],
  [40013, "config"], // invalid appid
  [40125, "config"], // invalid appsecret
  [40164, "config"], // caller IP not in the whitelist
  [61004, "config"], // caller IP not registered (newer wording of 40164)
  [40243, "config"], // AppSecret frozen
  [41002, "config"], // appid missing
  [41004, "config"], // appsecret missing
  [40002, "config"], // invalid grant_type (a broker bug, but nothing a retry fixes)
  [43002, "config"], // require POST (a broker bug)
  [50004, "config"], // token API forbidden for this account
  [50007, "config"], // account frozen
  [50002, "config"], // account restricted
  [61024, "config"], // component appid used on /cgi-bin/token
  [48001, "config"], // api unauthorized: the account lacks the permission (e.g. cards), §12 C6
  [89501, "config"], // IP pending admin confirmation
  [89503, "config"], // IP needs admin confirmation
  [89506, "config"], // IP rejected twice, blocked 24 h
  [89507, "config"], // IP rejected, blocked 1 h
  [45009, "quota"], // daily quota reached
  [45011, "quota"], // per-minute quota reached
  [40001, "token"], // invalid or not latest access_token
  [40014, "token"], // invalid access_token
  [42001, "token"], // access_token expired
]);

/**
 * Endpoints that take no access token: a "stale token" errcode from one of
 * them cannot be about a token. From /cgi-bin/token, 40001 is WeChat's legacy
 * answer to a wrong AppSecret (§1, §12 C4).
 */
const NO_TOKEN_ENDPOINTS: ReadonlySet<string> = new Set([
  "/cgi-bin/token",
  "/cgi-bin/stable_token",
  "/cgi-bin/clear_quota/v2",
]);

/** The broker's reaction to a WeChat errcode from `endpoint`. */
function classifyErrcode(errcode: number, endpoint?: string): ErrcodeCategory {
  const category = CATEGORY.get(errcode) ?? "unknown";
  if (category === "token" && endpoint !== undefined && NO_TOKEN_ENDPOINTS.has(endpoint)) {
    return "config";
  }
  return category;
}

/** What an operator should do about a config-category or quota errcode. */
const REMEDY: ReadonlyMap<number, string> = new Map([
  [40013, "check the app's appid in the broker config"],
  [40125, "check the app's AppSecret (reset it in the WeChat console if needed)"],
  [40164, "add the broker's egress IP to the API IP whitelist in the WeChat console"],
  [61004, "add the broker's egress IP to the API IP whitelist in the WeChat console"],
  [40243, "the AppSecret is frozen; unfreeze it in the WeChat console (takes ~10 minutes)"],
  [41002, "the app's appid is empty in the broker config"],
  [41004, "the app's AppSecret resolved to an empty value; check its env var or file"],
  [50004, "WeChat forbids this account from using the token API; contact WeChat support"],
  [50007, "the account is frozen; resolve it in the WeChat console"],
  [50002, "the account is restricted, migrated or deregistered"],
  [61024, "this appid belongs to a third-party platform and needs a component token"],
  [89501, "the broker's IP awaits admin confirmation in the WeChat console"],
  [
    89503,
    "the broker's IP needs admin confirmation; approve it in the WeChat console or whitelist it",
  ],
  [89506, "the broker's IP was rejected by the admin and is blocked for 24 hours"],
  [89507, "the broker's IP was rejected by the admin and is blocked for 1 hour"],
  [45009, "it resets at 00:00 China time, or an operator can clear it (token-broker clear-quota)"],
  [45011, "WeChat counts calls per minute: retry in the next minute"],
  [
    48001,
    "the account lacks WeChat's permission for this API (e.g. card permission for wx_card tickets); " +
      "obtain it in the WeChat console, or remove the kind from the app's `kinds` in the broker config",
  ],
]);

/** From an endpoint without an access token, 40001 / 40014 / 42001 mean a wrong AppSecret. */
const LEGACY_SECRET_REMEDY =
  "check the app's AppSecret (WeChat's legacy answer to a wrong AppSecret is 40001); " +
  "reset it in the WeChat console if needed";

/** What an operator should do about `errcode` from `endpoint`. */
function remedyFor(errcode: number, endpoint?: string): string {
  if (
    CATEGORY.get(errcode) === "token" &&
    endpoint !== undefined &&
    NO_TOKEN_ENDPOINTS.has(endpoint)
  ) {
    return LEGACY_SECRET_REMEDY;
  }
  return REMEDY.get(errcode) ?? "see WeChat's errcode reference";
}

export const wechatErrcodes: ErrcodeTable = {
  classify: (errcode, endpoint) => classifyErrcode(errcode, endpoint),
  remedy: (errcode, endpoint) => remedyFor(errcode, endpoint),
  stale: [40001, 42001, 40014],
};
