import type { ErrcodeCategory, ErrcodeTable } from "../../core/kind.js";

/**
 * How WeCom's errcodes read (facts §6, §12 C10). The numbers overlap with
 * the official-account API's but mean other things: 40001 is a wrong
 * secret here, not a stale token.
 */
const CATEGORY: ReadonlyMap<number, ErrcodeCategory> = new Map<number, ErrcodeCategory>([
  [-1, "retryable"],
  [40001, "config"], // invalid secret
  [40013, "config"], // invalid corpid
  [40091, "config"], // a secret of another corp
  [41002, "config"], // corpid missing
  [41004, "config"], // secret missing
  [48002, "config"], // API not permitted for this app
  [50003, "config"], // app disabled
  [60020, "config"], // caller IP not among the app's trusted IPs
  [301002, "config"], // a token of another app (the broker keys tokens per app: a bug)
  [45009, "quota"], // frequency limit: blocked for the window hit (a minute or an hour)
  [45033, "quota"], // too many concurrent calls
  [40014, "token"], // invalid access_token (WeCom may invalidate one early)
  [42001, "token"], // access_token expired
]);

/** /cgi-bin/gettoken takes no token: a "stale token" errcode from it cannot be about one. */
const NO_TOKEN_ENDPOINTS: ReadonlySet<string> = new Set(["/cgi-bin/gettoken"]);

const REMEDY: ReadonlyMap<number, string> = new Map([
  [
    40001,
    "check the app's secret (WeCom's 40001 is an invalid secret); each app has its own, in the WeCom admin console",
  ],
  [40013, "check the app's corpid in the broker config"],
  [40091, "the secret belongs to another corp: check the app's corpid and secret"],
  [41002, "the app's corpid is empty in the broker config"],
  [41004, "the app's secret resolved to an empty value; check its env var or file"],
  [
    48002,
    "the app has no permission for this API; grant it in the WeCom admin console or remove the kind from the app's `kinds`",
  ],
  [50003, "the app is disabled in the WeCom admin console"],
  [
    45009,
    "WeCom limits calls per minute and per hour for the corp; the broker stops calling for the window " +
      "(a minute, or an hour if limited again within the hour) and tries again after it",
  ],
  [45033, "too many concurrent calls to WeCom for the corp; the broker stops calling for a minute"],
  [301002, "a token of another app was used: report this broker bug"],
]);

/** The IP WeCom names in a 60020 errmsg ("from ip: 1.2.3.4"), if any. */
export function untrustedIp(errmsg: string | undefined): string | undefined {
  return errmsg?.match(/from ip:?\s*([0-9a-fA-F.:]+)/i)?.[1];
}

export const wecomErrcodes: ErrcodeTable = {
  classify: (errcode, endpoint) => {
    const category = CATEGORY.get(errcode) ?? "unknown";
    return category === "token" && endpoint !== undefined && NO_TOKEN_ENDPOINTS.has(endpoint)
      ? "config"
      : category;
  },
  remedy: (errcode, _endpoint, errmsg) => {
    if (errcode === 60020) {
      const ip = untrustedIp(errmsg);
      return `add ${ip ?? "the broker's egress IP"} to the app's trusted IPs (企业可信IP) in the WeCom admin console; the broker is the one fixed egress for gettoken`;
    }
    return (
      REMEDY.get(errcode) ??
      "see WeCom's errcode reference (errcode lookup at developer.work.weixin.qq.com)"
    );
  },
  stale: [40014, 42001],
};
