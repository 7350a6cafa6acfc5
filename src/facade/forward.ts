import { Readable } from "node:stream";
import type { CredentialKey } from "../core/credential.js";
import { callerAddress, inAnyCidr } from "../security/ip.js";
import type { CompiledPolicy } from "../security/policy.js";
import type { RefusalLog } from "../security/refusal-log.js";
import type { Logger } from "../shared/logger.js";
import type { AppConfig } from "../token/app.js";
import type { TokenManager } from "../token/token-manager.js";
import type { BrokerCalls } from "./broker-calls.js";
import { through } from "./endpoint-kit.js";
import { type FacadeRequest, type NodeResponse, param, send } from "./http-io.js";
import type { FacadeIdentities } from "./identities.js";
import type { RejectionReports } from "./rejection-reports.js";
import { familyOf, type TokenOwners } from "./token-owners.js";
import { fail, ok, type Reply } from "./wechat-reply.js";

/** Bodies of business calls (JSON, articles, menus); media uploads go to WeChat's file host. */
const MAX_FORWARD_BODY = 10 * 1024 * 1024;
/** JSON answers read to look for a rejection; larger ones (and media) stream through untouched. */
const MAX_INSPECTED_ANSWER = 1024 * 1024;

export interface ForwardDeps {
  readonly owners: TokenOwners;
  readonly calls: BrokerCalls;
  readonly ids: FacadeIdentities;
  readonly manager: TokenManager;
  readonly policy: CompiledPolicy;
  readonly refusals: RefusalLog;
  /** One report per rejected value for a fleet's worth of rejections. */
  readonly reports: RejectionReports;
  /** Base URLs of WeChat's and WeCom's API hosts (upstream.baseUrl, upstream.wecomBaseUrl). */
  readonly upstream: { readonly wechat: string; readonly wecom: string };
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
  readonly logger: Logger;
}

/**
 * Any other WeChat API call, e.g. `/cgi-bin/message/custom/send?access_token=…`,
 * when an SDK sends everything to its API host: forwarded as it is (method,
 * path, query, body, content type) to the host of the app whose token it
 * carries, and WeChat's answer returned as it is. Only calls carrying an
 * access token the broker issued are forwarded (the app's, or a user's
 * token with its openid), so the façade is no open proxy. When WeChat
 * rejects the token (the app's stale errcodes: 40001/42001/40014, WeCom's
 * 40014/42001), the broker learns it first-hand and reports it through
 * InvalidateToken (compare-and-refresh) before answering: the SDK's own
 * "token invalid → fetch again" then gets the new token, and however many
 * SDK instances see the rejection, the broker refreshes once.
 * Returns the outcome for the façade's metrics.
 */
export async function forward(
  req: FacadeRequest,
  res: NodeResponse,
  d: ForwardDeps,
): Promise<string> {
  const reply = (r: Reply) => {
    send(res, r);
    return `errcode_${String(r.body.errcode)}`;
  };
  const value = param(req.query, "access_token");
  if (value === undefined) return reply(fail(41001));
  const owner = ownerOf(d, value, param(req.query, "openid"));
  if (!owner) {
    return reply(
      fail(40001, "the token broker forwards only calls carrying an access token it issued"),
    );
  }
  const address = callerAddress(
    req.peer?.address,
    d.policy.trustedProxies.length > 0 ? req.header.get("x-forwarded-for") : null,
    d.policy.trustedProxies,
  );
  if (d.policy.allow.length > 0 && !inAnyCidr(address.ip, d.policy.allow)) {
    d.refusals.record(
      { event: "address_denied", client: null, address: address.address, method: "forward" },
      { app: owner.app.id, code: "permission_denied" },
      "security: address_denied",
    );
    return reply(fail(familyOf(owner.app) === "wecom" ? 60020 : 40164));
  }
  const body =
    req.httpMethod === "GET" || req.httpMethod === "HEAD"
      ? undefined
      : await req.body(MAX_FORWARD_BODY);
  const base = familyOf(owner.app) === "wecom" ? d.upstream.wecom : d.upstream.wechat;
  const target = `${base.replace(/\/+$/, "")}${req.path}?${req.query.toString()}`;
  const contentType = req.header.get("content-type");
  let upstream: Response;
  try {
    upstream = await d.fetch(target, {
      method: req.httpMethod,
      headers: contentType ? { "content-type": contentType } : {},
      ...(body === undefined ? {} : { body: new Uint8Array(body) }),
      redirect: "manual",
      signal: AbortSignal.any([req.signal, AbortSignal.timeout(d.timeoutMs)]),
    });
  } catch (err) {
    // The query holds the token: only the path is logged.
    d.logger.warn(
      { path: req.path, app: owner.app.id, err: (err as Error).name },
      "facade: a forwarded call did not reach WeChat",
    );
    return reply(fail(-1, "the token broker could not reach WeChat"));
  }
  const type = upstream.headers.get("content-type") ?? "";
  const length = Number(upstream.headers.get("content-length") ?? "0");
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "content-disposition"]) {
    const v = upstream.headers.get(name);
    if (v !== null) headers[name] = v;
  }
  if (!/json|text\/plain/.test(type) || length > MAX_INSPECTED_ANSWER || upstream.body === null) {
    res.writeHead(upstream.status, headers);
    if (upstream.body) Readable.fromWeb(upstream.body as never).pipe(res);
    else res.end();
    return `http_${upstream.status}`;
  }
  const text = Buffer.from(await upstream.arrayBuffer());
  const errcode = errcodeOf(text);
  if (errcode !== undefined && staleErrcodes(d.manager, owner.key).includes(errcode)) {
    d.owners.rejected(value);
    await d.reports.once(value, () => report(req, d, owner, value, errcode));
  }
  res.writeHead(upstream.status, headers);
  res.end(text);
  return errcode === undefined || errcode === 0 ? "ok" : `errcode_${errcode}`;
}

interface ForwardOwner {
  readonly app: AppConfig;
  readonly key: CredentialKey;
}

function ownerOf(
  d: ForwardDeps,
  value: string,
  openid: string | undefined,
): ForwardOwner | undefined {
  const app = d.owners.accessTokenOwner(value)?.app;
  if (app) return { app, key: { appId: app.id, kind: "access_token" } };
  if (openid === undefined) return undefined;
  const userApp = d.owners.userTokenOwner(value, openid);
  return userApp
    ? { app: userApp, key: { appId: userApp.id, kind: "user_access_token", subject: openid } }
    : undefined;
}

/** WeChat rejected the token: compare-and-refresh, as the token's holder (get, invalidate). */
async function report(
  req: FacadeRequest,
  d: ForwardDeps,
  owner: ForwardOwner,
  value: string,
  errcode: number,
): Promise<void> {
  const result = await through(
    req,
    { client: d.ids.tokenHolder(owner.app) },
    familyOf(owner.app),
    (c) => d.calls.invalidate(owner.key, value, errcode, c),
    () => ok({}, true),
  );
  if (result.body.errcode !== 0) {
    d.logger.warn(
      { app: owner.app.id, kind: owner.key.kind, errcode, answer: result.body.errcode },
      "facade: WeChat rejected a forwarded call's token, and reporting it failed",
    );
  }
}

function staleErrcodes(manager: TokenManager, key: CredentialKey): readonly number[] {
  try {
    return manager.staleErrcodes(key.appId, key.kind, key.subject);
  } catch {
    return [];
  }
}

function errcodeOf(text: Buffer): number | undefined {
  try {
    const parsed: unknown = JSON.parse(text.toString("utf8"));
    const errcode = (parsed as { errcode?: unknown } | null)?.errcode;
    return typeof errcode === "number" ? errcode : undefined;
  } catch {
    return undefined;
  }
}
