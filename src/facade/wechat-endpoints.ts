import { Code, ConnectError } from "@connectrpc/connect";
import type { Token } from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKind } from "../core/credential.js";
import type { AppConfig } from "../token/app.js";
import type { CallCtx } from "./broker-calls.js";
import {
  type Endpoint,
  endOf,
  expiresIn,
  type FacadeTools,
  presented,
  through,
  wechatApp,
} from "./endpoint-kit.js";
import { type FacadeRequest, param } from "./http-io.js";
import { refused } from "./identities.js";
import type { Verdict } from "./invoke.js";
import { fail, ok, type Reply } from "./wechat-reply.js";

/** stable_token bodies are a few hundred bytes. */
const MAX_JSON_BODY = 16 * 1024;

/** The audited reason of a force refresh asked for through stable_token. */
const FORCE_REASON = "stable_token force_refresh=true through the WeChat-compatible facade";

/**
 * `GET /cgi-bin/token?grant_type=client_credential&appid&secret`: the
 * broker's current access token. With `rejected=<token>` (the token WeChat
 * just refused) it is a compare-and-refresh first (InvalidateToken).
 */
export const token: Endpoint = async (req, t) => {
  if (req.httpMethod !== "GET") return fail(43001);
  const q = req.query;
  if (param(q, "grant_type") !== "client_credential") return fail(40002);
  const appid = param(q, "appid");
  if (appid === undefined) return fail(41002);
  const { app, verdict } = bySecret(req, t, appid, param(q, "secret"));
  return accessToken(req, t, app, verdict, (c, key) =>
    fetchOrReport(t, c, key, param(q, "rejected")),
  );
};

/**
 * `POST /cgi-bin/stable_token` with `{grant_type, appid, secret,
 * force_refresh}`: the broker's current access token, whichever mode the
 * broker fetches it in. `force_refresh: true` rotates only for a client
 * with the admin permission (AdminService.ForceRefresh, with its limits and
 * audit line); anyone else gets the current token, and nothing rotates.
 */
export const stableToken: Endpoint = async (req, t) => {
  if (req.httpMethod !== "POST") return fail(43002);
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse((await req.body(MAX_JSON_BODY)).toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error();
    json = parsed as Record<string, unknown>;
  } catch {
    return fail(47001, "the body must be a JSON object");
  }
  const q = req.query;
  if (param(q, "grant_type", json) !== "client_credential") return fail(40002);
  const appid = param(q, "appid", json);
  if (appid === undefined) return fail(41002);
  const { app, verdict } = bySecret(req, t, appid, param(q, "secret", json));
  const rejected = param(q, "rejected", json);
  const force = param(q, "force_refresh", json) === "true";
  return accessToken(req, t, app, verdict, async (c, key) => {
    if (!force || rejected !== undefined) return fetchOrReport(t, c, key, rejected);
    try {
      return await t.calls.forceRefresh(key.appId, FORCE_REASON, c);
    } catch (err) {
      if (!notForced(err, c)) throw err;
      return t.calls.getToken(key, c);
    }
  });
};

/**
 * `GET /cgi-bin/ticket/getticket?access_token&type=jsapi|wx_card`: the
 * broker's ticket. WeChat guards it with the app's access token, and so does
 * the façade: the token must be the broker's (current, or one it handed out
 * that has not ended); an `authorization: Bearer` API key, if sent, names the
 * client instead. `rejected=<ticket>` reports a ticket first.
 */
export const ticket: Endpoint = async (req, t) => {
  if (req.httpMethod !== "GET") return fail(43001);
  const q = req.query;
  const value = param(q, "access_token");
  if (value === undefined) return fail(41001);
  const owner = t.owners.accessTokenOwner(value, "wechat");
  const type = param(q, "type");
  const kind: CredentialKind | undefined =
    type === "jsapi" ? "jsapi_ticket" : type === "wx_card" ? "wx_card_ticket" : undefined;
  if (owner && !owner.expired && kind === undefined)
    return fail(40097, "type must be jsapi or wx_card");
  const verdict: Verdict = !owner
    ? refused(40001, "the access_token is not one this broker issued (or it was replaced)")
    : owner.expired
      ? refused(42001, "the access_token has expired")
      : (t.ids.byBearer(req.header.get("authorization"), "wechat") ?? {
          client: t.ids.tokenHolder(owner.app),
        });
  const key = { appId: owner?.app.id ?? "", kind: kind ?? "jsapi_ticket" };
  return through(
    req,
    verdict,
    "wechat",
    (c) => fetchOrReport(t, c, key, param(q, "rejected")),
    (tk) => ok({ ticket: tk.value, expires_in: expiresIn(tk) }, true),
  );
};

/** The app named by `appid` and who the caller is, by its secret or API key. */
function bySecret(
  req: FacadeRequest,
  t: FacadeTools,
  appid: string,
  secret: string | undefined,
): { app: AppConfig | undefined; verdict: Verdict } {
  const app = wechatApp(t.apps, appid);
  if (!app)
    return { app, verdict: refused(40013, "no app with this appid is served by this broker") };
  return { app, verdict: t.ids.bySecret(app, "wechat", presented(req, secret)) };
}

/** Answers an access-token endpoint with what `work` gets, remembering the token handed out. */
function accessToken(
  req: FacadeRequest,
  t: FacadeTools,
  app: AppConfig | undefined,
  verdict: Verdict,
  work: (c: CallCtx, key: { appId: string; kind: CredentialKind }) => Promise<Token>,
): Promise<Reply> {
  const key = { appId: app?.id ?? "", kind: "access_token" };
  return through(
    req,
    verdict,
    "wechat",
    (c) => work(c, key),
    (tk) => {
      if (tk.value === "") return fail(48001, "this client may report tokens but not read them");
      if (app) t.owners.served(app, tk.value, endOf(tk));
      return ok({ access_token: tk.value, expires_in: expiresIn(tk) }, false);
    },
  );
}

/** GetToken, or InvalidateToken when the caller says which value WeChat rejected. */
export function fetchOrReport(
  t: FacadeTools,
  c: CallCtx,
  key: { appId: string; kind: CredentialKind },
  rejected: string | undefined,
): Promise<Token> {
  if (rejected === undefined) return t.calls.getToken(key, c);
  t.owners.rejected(rejected);
  return t.calls.invalidate(key, rejected, 0, c);
}

/**
 * A force refresh that did not happen for a reason the current token
 * answers: the client lacks the admin permission, the app fetches classic
 * tokens (nothing to force), or WeChat's force limits are used up.
 */
function notForced(err: unknown, c: CallCtx): boolean {
  const code = ConnectError.from(err).code;
  if (code === Code.PermissionDenied) return c.outcome.identified;
  return code === Code.FailedPrecondition || code === Code.ResourceExhausted;
}
