import type { CredentialKind } from "../core/credential.js";
import type { CompiledClient } from "../security/policy.js";
import type { AppConfig } from "../token/app.js";
import { type Endpoint, endOf, expiresIn, presented, through, wecomApps } from "./endpoint-kit.js";
import { type FacadeRequest, param } from "./http-io.js";
import { refused } from "./identities.js";
import type { Verdict } from "./invoke.js";
import { fetchOrReport } from "./wechat-endpoints.js";
import { fail, ok } from "./wechat-reply.js";

/**
 * WeCom's `GET /cgi-bin/gettoken?corpid&corpsecret`: the broker's token of
 * the app whose secret it is. Several apps of a corp each have their own
 * secret; a caller using an API key instead names the app with `agentid`
 * when its client may use more than one app of the corp.
 */
export const gettoken: Endpoint = async (req, t) => {
  if (req.httpMethod !== "GET") return fail(43001);
  const q = req.query;
  const corpid = param(q, "corpid");
  if (corpid === undefined) return fail(41002);
  const apps = wecomApps(t.apps, corpid);
  const { app, verdict } = pick(req, t.ids, apps, param(q, "corpsecret"), param(q, "agentid"));
  const key = { appId: app?.id ?? "", kind: "access_token" };
  return through(
    req,
    verdict,
    "wecom",
    (c) => fetchOrReport(t, c, key, param(q, "rejected")),
    (tk) => {
      if (app) t.owners.served(app, tk.value, endOf(tk));
      return ok({ access_token: tk.value, expires_in: expiresIn(tk) }, true);
    },
  );
};

/** WeCom's `GET /cgi-bin/get_jsapi_ticket?access_token`: the corp's JS-SDK ticket. */
export const corpTicket: Endpoint = (req, t) => wecomTicket(req, t, "jsapi_ticket");

/** WeCom's `GET /cgi-bin/ticket/get?access_token&type=agent_config`: the app's ticket. */
export const agentTicket: Endpoint = async (req, t) => {
  if (param(req.query, "type") !== "agent_config") return fail(40097, "type must be agent_config");
  return wecomTicket(req, t, "wecom_agent_ticket");
};

/** A ticket guarded, as WeCom guards it, by the app's access token (see getticket). */
function wecomTicket(
  req: FacadeRequest,
  t: Parameters<Endpoint>[1],
  kind: CredentialKind,
): ReturnType<Endpoint> {
  if (req.httpMethod !== "GET") return Promise.resolve(fail(43001));
  const value = param(req.query, "access_token");
  if (value === undefined) return Promise.resolve(fail(41001));
  const owner = t.owners.accessTokenOwner(value, "wecom");
  const verdict: Verdict = !owner
    ? refused(40014, "the access_token is not one this broker issued (or it was replaced)")
    : owner.expired
      ? refused(42001, "the access_token has expired")
      : (t.ids.byBearer(req.header.get("authorization"), "wecom") ?? {
          client: t.ids.tokenHolder(owner.app),
        });
  const key = { appId: owner?.app.id ?? "", kind };
  return through(
    req,
    verdict,
    "wecom",
    (c) => fetchOrReport(t, c, key, param(req.query, "rejected")),
    (tk) => ok({ ticket: tk.value, expires_in: expiresIn(tk) }, true),
  );
}

/**
 * The corp's app the caller means, and who the caller is: the app whose own
 * secret `corpsecret` is (each is compared, in constant time), else the
 * client of an API key (the header, or `corpsecret`) or certificate, with
 * the app chosen by `agentid` or by being the only one of the corp it may use.
 */
function pick(
  req: FacadeRequest,
  ids: Parameters<Endpoint>[1]["ids"],
  apps: readonly AppConfig[],
  secret: string | undefined,
  agentid: string | undefined,
): { app: AppConfig | undefined; verdict: Verdict } {
  if (apps.length === 0)
    return {
      app: undefined,
      verdict: refused(40013, "no app of this corpid is served by this broker"),
    };
  const bearer = ids.byBearer(req.header.get("authorization"), "wecom");
  if (!bearer && secret !== undefined) {
    let holder: AppConfig | undefined;
    for (const app of apps) if (ids.isAppSecret(app, secret)) holder ??= app;
    if (holder) return { app: holder, verdict: { client: ids.secretHolder(holder) } };
  }
  let client: CompiledClient | undefined;
  if (bearer) {
    if ("refused" in bearer) return { app: apps[0], verdict: bearer };
    client = bearer.client;
  } else {
    // Not an app's secret: an API key, a certificate, or nothing (41004) or a wrong secret (40001).
    const first = apps[0] as AppConfig;
    const verdict = ids.bySecret(first, "wecom", presented(req, secret));
    if ("refused" in verdict) return { app: first, verdict };
    client = verdict.client;
  }
  const mayUse = (a: AppConfig) => client.apps === undefined || client.apps.has(a.id);
  const candidates = apps.filter((a) =>
    agentid === undefined ? mayUse(a) : a.agentid === agentid,
  );
  if (candidates.length === 1) return { app: candidates[0], verdict: { client } };
  if (candidates.length === 0 && agentid !== undefined)
    return { app: undefined, verdict: refused(40097, "no app of the corp has this agentid") };
  // None it may use: the chain's authorize refuses it, naming the app.
  if (candidates.length === 0) return { app: apps[0], verdict: { client } };
  return {
    app: undefined,
    verdict: refused(
      40097,
      "this client may use several apps of the corp: add agentid=<the app's AgentId> to the request",
    ),
  };
}
