import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { REAUTHORIZE_REASON } from "../shared/errors.js";

/**
 * What the façade answers, in WeChat's wire format: HTTP 200 with a JSON
 * body; errors as `{errcode, errmsg}` with WeChat's own errcodes, so an SDK
 * reports them as it reports WeChat's (facts §0, §10; WeCom §6).
 */
export interface Reply {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** Whose errcodes an endpoint speaks: WeCom's differ (40001 is a wrong secret there). */
export type Family = "wechat" | "wecom";

/** WeChat's texts for the errcodes the façade answers (matched on errcode only by SDKs). */
const ERRMSG: Readonly<Record<number, string>> = {
  [-1]: "system error",
  40001: "invalid credential, access_token is invalid or not latest",
  40002: "invalid grant_type",
  40013: "invalid appid",
  40014: "invalid access_token",
  40029: "invalid code",
  40030: "invalid refresh_token",
  40066: "invalid url",
  40097: "invalid args",
  40125: "invalid appsecret",
  40164: "invalid ip, not in whitelist",
  41001: "access_token missing",
  41002: "appid missing",
  41003: "refresh_token missing",
  41004: "appsecret missing",
  41008: "missing code",
  42001: "access_token expired",
  43001: "require GET method",
  43002: "require POST method",
  45009: "reach max api daily quota limit",
  45011: "api minute-quota reach limit mustslower retry next minute",
  47001: "data format error",
  48001: "api unauthorized",
  60020: "not allow to access from your ip",
};

/** A success body: getticket and WeCom's endpoints carry `errcode: 0`, token endpoints do not (R2). */
export function ok(fields: Record<string, unknown>, envelope: boolean): Reply {
  return { status: 200, body: envelope ? { errcode: 0, errmsg: "ok", ...fields } : fields };
}

/** An error body; `detail` (the broker's own words, never a secret) follows WeChat's text. */
export function fail(errcode: number, detail?: string, status = 200): Reply {
  const text = ERRMSG[errcode] ?? "error";
  return {
    status,
    body: { errcode, errmsg: detail === undefined ? text : `${text}: ${detail}` },
  };
}

/** The errcode a wrong secret gets: WeChat's 40125, WeCom's 40001. */
export function badSecret(family: Family): number {
  return family === "wecom" ? 40001 : 40125;
}

/** The errcode a token WeChat does not know gets: 40001, WeCom's 40014. */
export function badToken(family: Family): number {
  return family === "wecom" ? 40014 : 40001;
}

/** How a failed call through the broker's RPC chain looks to a WeChat SDK. */
export interface FailureContext {
  readonly family: Family;
  /** The errcode the façade decided when it refused the caller's credentials. */
  readonly refused?: number | undefined;
  /** False when the chain refused the call before asking who the caller is (the address check). */
  readonly identified: boolean;
}

/**
 * Maps a ConnectError from the broker's services to WeChat's vocabulary:
 * refused credentials → the errcode decided with them (40125, 40013, …);
 * the address allowlist → 40164 (WeCom 60020); an ACL refusal or a broker
 * config problem → 48001 "api unauthorized"; quotas and rate limits → 45009
 * / 45011; a user who must authorize again → the errcode WeChat gave (40029,
 * 40030, 42002, …); outages → -1, "system error", which SDKs retry.
 */
export function failureReply(err: unknown, c: FailureContext): Reply {
  const e = ConnectError.from(err);
  const message = e.rawMessage;
  switch (e.code) {
    case Code.Unauthenticated:
      return fail(c.refused ?? badSecret(c.family), c.refused === undefined ? message : undefined);
    case Code.PermissionDenied:
      if (!c.identified) return fail(c.family === "wecom" ? 60020 : 40164, message);
      return fail(48001, message);
    case Code.NotFound:
      return fail(40013, message);
    case Code.ResourceExhausted: {
      const quoted = Number(/errcode (\d+)/.exec(message)?.[1]);
      return fail(quoted === 45009 || quoted === 45011 ? quoted : 45011, message);
    }
    case Code.InvalidArgument:
    case Code.FailedPrecondition: {
      const info = e.findDetails(ErrorInfoSchema).find((i) => i.reason === REAUTHORIZE_REASON);
      if (info) {
        const given = Number(info.metadata.errcode);
        const fallback = e.code === Code.InvalidArgument ? 40029 : 40030;
        return fail(Number.isInteger(given) && given > 0 ? given : fallback, message);
      }
      return fail(e.code === Code.InvalidArgument ? 40097 : 48001, message);
    }
    default:
      return fail(-1, message);
  }
}
