import { authorize } from "./access-token-check.js";
import { type ApiRequest, type ApiRoute, tokenOwner } from "./api-request.js";
import { type ApiResult, fail, OK_ENVELOPE, ok } from "./errors.js";
import { FORCE_METER, isMeteredPath } from "./quota.js";
import type { EmulatorState } from "./state.js";
import type { MeteredPath } from "./types.js";

/**
 * `daily_limit` reported for an API the emulator counts but does not limit
 * (getticket, getcallbackip by default): INT32_MAX, so a client that reads
 * `remain` never concludes it is out of quota. Emulator choice.
 */
export const UNMETERED_DAILY_LIMIT = 2_147_483_647;

type CgiPathCheck =
  | { readonly ok: true; readonly appid: string; readonly path: MeteredPath }
  | { readonly ok: false; readonly result: ApiResult };

/**
 * Token, body and `cgi_path` checks shared by quota/get and quota/clear:
 * 41001/40001/42001 → 47001 (body not a JSON object) → 76003 (cgi_path
 * missing, or not a path with a leading "/") → 76022 (a `/sns/` path) →
 * 76021 (not an API the emulator meters).
 */
function checkCgiPath(req: ApiRequest, state: EmulatorState): CgiPathCheck {
  const auth = authorize(req, state);
  if (!auth.ok) return auth;
  if (req.bodyMalformed) return { ok: false, result: fail(47001) };
  const path = req.body?.cgi_path;
  if (typeof path !== "string" || !path.startsWith("/")) return { ok: false, result: fail(76003) };
  if (path.startsWith("/sns/")) return { ok: false, result: fail(76022) };
  if (!isMeteredPath(path) || path === FORCE_METER) return { ok: false, result: fail(76021) };
  return { ok: true, appid: auth.token.appid, path };
}

/** `POST /cgi-bin/openapi/quota/get?access_token` with `{"cgi_path"}` (R23). */
export const quotaGetRoute: ApiRoute = {
  method: "POST",
  identify: tokenOwner,
  handle(req, state) {
    const check = checkCgiPath(req, state);
    if (!check.ok) return check.result;
    const limit = state.quota.dailyLimit(check.appid, check.path) ?? UNMETERED_DAILY_LIMIT;
    const used = state.quota.used(check.appid, check.path, state.now());
    return ok({
      ...OK_ENVELOPE,
      quota: { daily_limit: limit, used, remain: Math.max(0, limit - used) },
    });
  },
};

/**
 * `POST /cgi-bin/openapi/quota/clear?access_token` with `{"cgi_path"}` (R26):
 * resets that API's daily counter (for stable_token, its force allowance
 * too), using one of 50 clears a month (or a day, `apiQuotaClearPeriod`);
 * 48006 when they are spent.
 */
export const quotaClearRoute: ApiRoute = {
  method: "POST",
  identify: tokenOwner,
  handle(req, state) {
    const check = checkCgiPath(req, state);
    if (!check.ok) return check.result;
    if (!state.apiQuotaClears.take(check.appid, state.now())) return fail(48006);
    state.quota.clearPath(check.appid, check.path);
    return ok(OK_ENVELOPE);
  },
};
