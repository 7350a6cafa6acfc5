import { authorize } from "./access-token-check.js";
import { type ApiRoute, bodyField, queryParam, tokenOwner } from "./api-request.js";
import { fail, OK_ENVELOPE, ok } from "./errors.js";

/**
 * `POST /cgi-bin/clear_quota?access_token` with `{"appid"}` (R24): token
 * check → 47001 (body not a JSON object) → 41002 (appid missing) → 40013
 * (appid is not the token's account) → 48006 (10 clears this month, shared
 * with v2) → every daily counter of the account back to 0.
 */
export const clearQuotaRoute: ApiRoute = {
  method: "POST",
  identify: tokenOwner,
  handle(req, state) {
    const auth = authorize(req, state);
    if (!auth.ok) return auth.result;
    if (req.bodyMalformed) return fail(47001);
    const appid = bodyField(req, "appid");
    if (appid === undefined) return fail(41002);
    if (appid !== auth.token.appid) return fail(40013);
    if (!state.quotaClears.take(appid, state.now())) return fail(48006);
    state.quota.clearAll(appid);
    return ok(OK_ENVELOPE);
  },
};

/**
 * `POST /cgi-bin/clear_quota/v2?appid&appsecret` (R25 as corrected by §12
 * C1): WeChat documents both as "URL 参数,非 Body 参数", so the body is not
 * read and a body-only request gets 41002, as WeChat answers it. Needs no
 * access token, so it works while `/cgi-bin/token` answers 45009. 41002 →
 * 41004 → 40013 (unknown appid) → 40125 (wrong secret) → 48006 (shared
 * monthly allowance) → every daily counter back to 0.
 */
export const clearQuotaV2Route: ApiRoute = {
  method: "POST",
  identify: (req) => queryParam(req, "appid"),
  handle(req, state) {
    const appid = queryParam(req, "appid");
    const secret = queryParam(req, "appsecret");
    if (appid === undefined) return fail(41002);
    if (secret === undefined) return fail(41004);
    const app = state.apps.get(appid);
    if (!app) return fail(40013);
    if (secret !== app.secret) return fail(40125);
    if (!state.quotaClears.take(appid, state.now())) return fail(48006);
    state.quota.clearAll(appid);
    return ok(OK_ENVELOPE);
  },
};
