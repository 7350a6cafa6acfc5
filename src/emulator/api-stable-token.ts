import { type ApiRoute, bodyField } from "./api-request.js";
import { FORCE_GAP_MS } from "./config.js";
import { checkCredentials } from "./credentials.js";
import { fail, ok } from "./errors.js";
import { FORCE_METER } from "./quota.js";
import type { EmulatorState } from "./state.js";
import type { TokenRecord } from "./token-registry.js";

const PATH = "/cgi-bin/stable_token";

/**
 * `POST /cgi-bin/stable_token` with a JSON body `{grant_type, appid, secret,
 * force_refresh?}` (R12–R18). Its slot and quota are separate from
 * `/cgi-bin/token` (R11).
 *
 * - Normal mode returns the current token with `expires_in` = whole seconds
 *   remaining while more than `graceSeconds` (300) remain, and rotates once
 *   that much or less is left, so the old token lives out its own expiry (R13–R15).
 * - `force_refresh: true` (the JSON boolean) rotates: the previous token gets
 *   the grace period and the one before it dies (R16). A force call less
 *   than 30 s after the last rotating force call returns the current token
 *   with the remaining `expires_in` and does not rotate; it still uses one of
 *   the 20 daily force calls unless `countForceWithinGap` is false (R17).
 * - 45009 once the daily (500000) or force (20) allowance is used, 45011 past
 *   10000 calls in the minute (R18). A body that is not a JSON object → 47001.
 */
export const stableTokenRoute: ApiRoute = {
  method: "POST",
  identify: (req) => bodyField(req, "appid"),
  handle(req, state) {
    if (req.bodyMalformed) return fail(47001);
    const check = checkCredentials(state, {
      grantType: bodyField(req, "grant_type"),
      appid: bodyField(req, "appid"),
      secret: bodyField(req, "secret"),
      ip: req.ip,
    });
    if (!check.ok) {
      if (check.app) state.chargeFailure(check.app.appid, PATH, check.errcode);
      return fail(check.errcode, check.errmsg);
    }
    const { appid } = check.app;
    const { quota } = state;
    const now = state.now();
    const force = req.body?.force_refresh === true;
    const over =
      quota.exceeded(appid, PATH, now) ??
      (force ? quota.exceeded(appid, FORCE_METER, now) : undefined);
    if (over) return fail(over);

    const current = state.slots.current(appid, "stable", now);
    const token = force
      ? forceRefresh(state, appid, current, now)
      : normalMode(state, appid, current, now);
    quota.consume(appid, PATH, now);
    return ok({
      access_token: token.value,
      expires_in: Math.floor((token.expiresAt - now) / 1000),
    });
  },
};

/** R13–R15: keep the current token while more than the grace period remains. */
function normalMode(
  state: EmulatorState,
  appid: string,
  current: TokenRecord | undefined,
  now: number,
): TokenRecord {
  if (current && current.expiresAt - now > state.config.graceMs) return current;
  return state.slots.rotate(appid, "stable", now, state.config.tokenLifetimeMs);
}

/** R16–R17: rotate unless the last rotating force call was less than 30 s ago. */
function forceRefresh(
  state: EmulatorState,
  appid: string,
  current: TokenRecord | undefined,
  now: number,
): TokenRecord {
  const last = state.slots.lastForceAt(appid, "stable");
  if (current && last !== undefined && now - last < FORCE_GAP_MS) {
    if (state.config.countForceWithinGap) state.quota.consume(appid, FORCE_METER, now);
    return current;
  }
  state.quota.consume(appid, FORCE_METER, now);
  state.slots.markForce(appid, "stable", now);
  return state.slots.rotate(appid, "stable", now, state.config.tokenLifetimeMs);
}
