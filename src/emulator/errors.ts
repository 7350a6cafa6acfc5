/**
 * The errcode → errmsg table the emulator answers with (facts §10). The
 * envelope (`errmsg` + ` rid: …`, R1) is added by the router, so these are the
 * bare texts. Texts marked "emulator wording" have no sourced errmsg.
 */
const ERRMSG: Readonly<Record<number, string>> = {
  [-1]: "system error",
  40001: "invalid credential, access_token is invalid or not latest",
  40002: "invalid grant_type",
  40003: "invalid openid",
  40013: "invalid appid",
  40014: "invalid access_token",
  40029: "invalid code",
  40030: "invalid refresh_token",
  40066: "invalid url", // unknown API path (emulator choice)
  40097: "invalid args", // unknown getticket type (emulator choice, R21)
  40125: "invalid appsecret",
  40163: "code been used",
  40243: "AppSecret is frozen", // emulator wording
  41001: "access_token missing",
  41002: "appid missing",
  41003: "refresh_token missing",
  41004: "appsecret missing",
  41008: "missing oauth code",
  42001: "access_token expired",
  42002: "refresh_token expired", // emulator wording (facts: "refresh_token 超时")
  42003: "code expired", // emulator wording (facts: "oauth_code 超时")
  42007: "access_token and refresh_token are invalid, the user changed the password", // emulator wording
  43001: "require GET method",
  43002: "require POST method",
  45009: "reach max api daily quota limit",
  45011: "api minute-quota reach limit mustslower retry next minute",
  47001: "data format error",
  48001: "api unauthorized",
  48006: "forbid to clear quota because of reaching the limit",
  50002: "user limited",
  50004: "user not allow to use accesstoken, maybe for punishment",
  50007: "account is frozen", // emulator wording
  61024: "must use api(api_component_token) to get token for component acct",
  76003: "invalid cgi_path", // emulator wording
  76021: "cgi_path not found",
  76022: "could not use this cgi_path, no permission",
  89501: "this ip is waiting for administrator confirmation", // emulator wording
  89503: "this ip needs administrator confirmation", // emulator wording
  89506: "this ip was rejected by the administrator twice within 24 hours", // emulator wording
  89507: "this ip was rejected by the administrator within 1 hour", // emulator wording
};

/** The bare errmsg for `errcode`; unknown codes get a generic text. */
export function errmsgFor(errcode: number): string {
  return ERRMSG[errcode] ?? `errcode ${errcode}`;
}

/** The 40164 text, which names the caller's address (R4). */
export function notInWhitelistMessage(ip: string): string {
  return `invalid ip ${ip} ipv6 ::ffff:${ip}, not in whitelist`;
}

/** What a WeChat API handler decided. The router turns it into a response. */
export type ApiResult =
  | { readonly ok: true; readonly body: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly errcode: number; readonly errmsg?: string };

export function ok(body: Readonly<Record<string, unknown>>): ApiResult {
  return { ok: true, body };
}

/** A failure with the table text, or `errmsg` when the text is dynamic. */
export function fail(errcode: number, errmsg?: string): ApiResult {
  return errmsg === undefined ? { ok: false, errcode } : { ok: false, errcode, errmsg };
}

/** Body of every successful non-token API (R2). */
export const OK_ENVELOPE = { errcode: 0, errmsg: "ok" } as const;
