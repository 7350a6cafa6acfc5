import { type ApiRoute, queryParam } from "./api-request.js";
import { fail, OK_ENVELOPE, ok } from "./errors.js";
import {
  expiresIn,
  untrusted,
  wecomAuthorize,
  wecomTokenApp,
  wecomTokenCorp,
} from "./wecom-auth.js";
import {
  WECOM_AGENT_GET,
  WECOM_AGENT_TICKET,
  WECOM_CORP_TICKET,
  WECOM_GETTOKEN,
} from "./wecom-types.js";

/**
 * `GET /cgi-bin/gettoken?corpid&corpsecret` (R28, R29, R31): 41002 → 41004
 * → unknown corp 40013 → the corp's failures block (45009, ⚠) → the
 * (corp, gettoken) frequency limit (45009) → secret of no app of this corp:
 * 40091 if another corp's, else 40001 → app disabled 50003 → caller IP not
 * trusted 60020. Failures after the corp is known count toward the failures
 * block. Success: the app's token, the same one while it works.
 */
const gettokenRoute: ApiRoute = {
  method: "GET",
  family: "wecom",
  identify: (req) => queryParam(req, "corpid"),
  identifyApp(req, state) {
    const corpid = queryParam(req, "corpid");
    const secret = queryParam(req, "corpsecret");
    if (corpid === undefined || secret === undefined) return undefined;
    const app = state.wecomCorps.bySecret(corpid, secret);
    return app ? `${corpid}/${app.key}` : undefined;
  },
  handle(req, state) {
    const corpid = queryParam(req, "corpid");
    if (corpid === undefined) return fail(41002);
    const secret = queryParam(req, "corpsecret");
    if (secret === undefined) return fail(41004);
    const corps = state.wecomCorps;
    if (!corps.hasCorp(corpid)) return fail(40013);
    const now = state.now();
    const limiter = state.wecomLimiter;
    if (limiter.gettokenBlocked(corpid, now)) return fail(45009);
    if (limiter.call(corpid, WECOM_GETTOKEN, now)) return fail(45009);
    const failure = (errcode: number) => {
      limiter.gettokenFailed(corpid, now);
      return fail(errcode);
    };
    const app = corps.bySecret(corpid, secret);
    if (!app) return failure(corps.secretOfAnotherCorp(corpid, secret) ? 40091 : 40001);
    if (app.disabled) return failure(50003);
    if (untrusted(app, req.ip)) return failure(60020);
    const lifetime = state.config.wecom.tokenLifetimeMs;
    const token = state.wecomTokens.fetch(corpid, app.key, now, lifetime);
    return ok({
      ...OK_ENVELOPE,
      access_token: token.value,
      expires_in: expiresIn(state, token.expiresAt, lifetime),
    });
  },
};

/**
 * `GET /cgi-bin/get_jsapi_ticket?access_token` (R32): the corp's ticket,
 * whichever app's token asks; the same one within its life. After the
 * token checks, the hourly ticket allowances of corp and app (45009).
 */
const corpTicketRoute: ApiRoute = {
  method: "GET",
  family: "wecom",
  identify: wecomTokenCorp,
  identifyApp: wecomTokenApp,
  handle(req, state) {
    const auth = wecomAuthorize(req, state, WECOM_CORP_TICKET);
    if (!auth.ok) return auth.result;
    const { corpid, app } = auth.token;
    const now = state.now();
    if (state.wecomLimiter.ticket(corpid, app, now)) return fail(45009);
    const lifetime = state.config.wecom.ticketLifetimeMs;
    const ticket = state.wecomTokens.ticket(corpid, undefined, now, lifetime);
    return ok({
      ...OK_ENVELOPE,
      ticket: ticket.value,
      expires_in: expiresIn(state, ticket.expiresAt, lifetime),
    });
  },
};

/**
 * `GET /cgi-bin/ticket/get?access_token&type=agent_config` (R32, C10): the
 * ticket of the token's own app. After the token checks: `type` missing or
 * not agent_config → 40058 (emulator choice); a corp-level secret's token
 * (no agentid) → 48002 (emulator choice); then the hourly allowances.
 */
const agentTicketRoute: ApiRoute = {
  method: "GET",
  family: "wecom",
  identify: wecomTokenCorp,
  identifyApp: wecomTokenApp,
  handle(req, state) {
    const auth = wecomAuthorize(req, state, WECOM_AGENT_TICKET);
    if (!auth.ok) return auth.result;
    if (queryParam(req, "type") !== "agent_config") return fail(40058);
    if (auth.app.agentid === undefined) return fail(48002);
    const { corpid, app } = auth.token;
    const now = state.now();
    if (state.wecomLimiter.ticket(corpid, app, now)) return fail(45009);
    const lifetime = state.config.wecom.ticketLifetimeMs;
    const ticket = state.wecomTokens.ticket(corpid, app, now, lifetime);
    return ok({
      ...OK_ENVELOPE,
      ticket: ticket.value,
      expires_in: expiresIn(state, ticket.expiresAt, lifetime),
    });
  },
};

/**
 * `GET /cgi-bin/agent/get?access_token&agentid` (获取应用详情), the API a
 * test uses to show a token works only for its own app: another app's
 * agentid (or a corp-level token) → 301002 (§12 C10). Missing or
 * non-numeric agentid → 40056. Success: a minimal app description.
 */
const agentGetRoute: ApiRoute = {
  method: "GET",
  family: "wecom",
  identify: wecomTokenCorp,
  identifyApp: wecomTokenApp,
  handle(req, state) {
    const auth = wecomAuthorize(req, state, WECOM_AGENT_GET);
    if (!auth.ok) return auth.result;
    const agentid = Number(queryParam(req, "agentid"));
    if (!Number.isInteger(agentid) || agentid <= 0) return fail(40056);
    if (auth.app.agentid !== agentid) return fail(301002);
    return ok({ ...OK_ENVELOPE, agentid, name: `app ${agentid}`, close: 0 });
  },
};

export const WECOM_ROUTES: ReadonlyArray<readonly [string, ApiRoute]> = [
  [WECOM_GETTOKEN, gettokenRoute],
  [WECOM_CORP_TICKET, corpTicketRoute],
  [WECOM_AGENT_TICKET, agentTicketRoute],
  [WECOM_AGENT_GET, agentGetRoute],
];
