import { type ApiRequest, type ApiRoute, queryParam } from "./api-request.js";
import type { AppState } from "./apps.js";
import { type ApiResult, fail, OK_ENVELOPE, ok } from "./errors.js";
import type { Grant } from "./oauth-grants.js";
import type { EmulatorState } from "./state.js";

const EXCHANGE_PATH = "/sns/oauth2/access_token";
const REFRESH_PATH = "/sns/oauth2/refresh_token";

type AppCheck =
  | { readonly ok: true; readonly app: AppState }
  | { readonly ok: false; readonly result: ApiResult };

/**
 * The account checks of the two `/sns/oauth2/*` APIs, in the order of R4
 * where they overlap: grant_type (40002) → appid missing (41002) → secret
 * missing (41004, exchange only) → unknown appid (40013) → the minute limit
 * (45011, R37; every call that gets this far counts) → wrong secret (40125,
 * or 40001 in legacy mode) → frozen secret (40243). The IP whitelist, the
 * account flags and the risk flow belong to the basic token APIs and are
 * not applied here (emulator choice; WeChat documents none of it for /sns).
 */
function checkApp(
  req: ApiRequest,
  state: EmulatorState,
  path: string,
  grantType: string,
  withSecret: boolean,
): AppCheck {
  const reject = (errcode: number): AppCheck => ({ ok: false, result: fail(errcode) });
  if (queryParam(req, "grant_type") !== grantType) return reject(40002);
  const appid = queryParam(req, "appid");
  if (appid === undefined) return reject(41002);
  const secret = queryParam(req, "secret");
  if (withSecret && secret === undefined) return reject(41004);
  const app = state.apps.get(appid);
  if (!app) return reject(40013);
  if (state.oauthPolicy.overMinuteLimit(appid, path, state.now())) return reject(45011);
  if (withSecret && secret !== app.secret) return reject(state.config.wrongSecretErrcode);
  if (withSecret && app.secretFrozen) return reject(40243);
  return { ok: true, app };
}

/** The token fields both `/sns/oauth2/*` APIs answer (R34, R35); no errcode (R2). */
function grantBody(grant: Grant, now: number): Record<string, unknown> {
  return {
    access_token: grant.access.value,
    expires_in: Math.round((grant.access.expiresAt - now) / 1000),
    refresh_token: grant.refreshToken,
    openid: grant.user.openid,
    scope: grant.user.scope,
  };
}

/**
 * `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
 * (R33, R34): after the account checks, missing code → 41008, then the
 * code's verdict (40029 unknown or another account's, 40029/42003 expired,
 * 40163 used). Success: a new grant; `unionid` only for `snsapi_userinfo`
 * users that have one, `is_snapshotuser: 1` only for snapshot users.
 */
export const snsAccessTokenRoute: ApiRoute = {
  method: "GET",
  identify: (req) => queryParam(req, "appid"),
  handle(req, state) {
    const check = checkApp(req, state, EXCHANGE_PATH, "authorization_code", true);
    if (!check.ok) return check.result;
    const code = queryParam(req, "code");
    if (code === undefined) return fail(41008);
    const { appid } = check.app;
    const now = state.now();
    const policy = state.oauthPolicy;
    const taken = state.oauthCodes.take(code, appid, now, policy.expiredCodeErrcode);
    if (!taken.ok) return fail(taken.errcode);
    const { user } = taken.record;
    const grant = state.oauthGrants.issue(
      appid,
      user,
      now,
      policy.accessTokenLifetimeMs,
      policy.refreshTokenTtlMs(appid),
    );
    return ok({
      ...grantBody(grant, now),
      ...(user.scope === "snsapi_userinfo" && user.unionid !== undefined
        ? { unionid: user.unionid }
        : {}),
      ...(user.snapshot ? { is_snapshotuser: 1 } : {}),
    });
  },
};

/**
 * `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token`
 * (R35, §12 C7): no secret. After the account checks, missing refresh_token
 * → 41003, then the grant's verdict (40030, 42002, 42007). Success answers
 * the same refresh token and the (same or new) access token.
 */
export const snsRefreshTokenRoute: ApiRoute = {
  method: "GET",
  identify: (req) => queryParam(req, "appid"),
  handle(req, state) {
    const check = checkApp(req, state, REFRESH_PATH, "refresh_token", false);
    if (!check.ok) return check.result;
    const refreshToken = queryParam(req, "refresh_token");
    if (refreshToken === undefined) return fail(41003);
    const now = state.now();
    const lifetime = state.oauthPolicy.accessTokenLifetimeMs;
    const verdict = state.oauthGrants.refresh(refreshToken, check.app.appid, now, lifetime);
    return verdict.ok ? ok(grantBody(verdict.grant, now)) : fail(verdict.errcode);
  },
};

/**
 * `GET /sns/auth?access_token&openid` (R36): missing access_token → 41001;
 * a token the OAuth APIs never issued (basic tokens included) → 40001;
 * expired → 42001; voided by a password change → 40001; openid missing or
 * not the token's user → 40003. Success carries `errcode: 0` (R2). No quota.
 */
export const snsAuthRoute: ApiRoute = {
  method: "GET",
  identify(req, state) {
    const token = queryParam(req, "access_token");
    return token === undefined ? undefined : state.oauthGrants.ownerOf(token);
  },
  handle(req, state) {
    const token = queryParam(req, "access_token");
    if (token === undefined) return fail(41001);
    const errcode = state.oauthGrants.check(token, queryParam(req, "openid"), state.now());
    return errcode === 0 ? ok(OK_ENVELOPE) : fail(errcode);
  },
};
