import { type ApiRequest, queryParam } from "./api-request.js";
import { type ApiResult, fail } from "./errors.js";
import type { EmulatorState } from "./state.js";
import type { WecomApp } from "./wecom-corps.js";
import type { WecomToken } from "./wecom-tokens.js";

export type WecomAuthorization =
  | { readonly ok: true; readonly token: WecomToken; readonly app: WecomApp }
  | { readonly ok: false; readonly result: ApiResult };

/** Whether the app's trusted IPs (if any) leave out `ip` (60020, C10). */
export function untrusted(app: WecomApp, ip: string): boolean {
  return app.trustedIps !== null && !app.trustedIps.includes(ip);
}

/**
 * The checks of a WeCom API that takes an access_token, in this order
 * (emulator choice where WeCom does not say): missing → 41001; never issued
 * (official-account tokens included) → 40014; the (corp, API) frequency
 * limit → 45009 (R31; every call with a known token counts); killed early
 * → 40014, expired → 42001 (R30); app disabled → 50003; caller IP not
 * trusted → 60020; API not permitted for the app → 48002.
 */
export function wecomAuthorize(
  req: ApiRequest,
  state: EmulatorState,
  path: string,
): WecomAuthorization {
  const reject = (errcode: number): WecomAuthorization => ({ ok: false, result: fail(errcode) });
  const value = queryParam(req, "access_token");
  if (value === undefined) return reject(41001);
  const now = state.now();
  const known = state.wecomTokens.lookup(value);
  if (!known) return reject(40014);
  if (state.wecomLimiter.call(known.corpid, path, now)) return reject(45009);
  const verdict = state.wecomTokens.verdict(value, now);
  if (!verdict.valid) return reject(verdict.errcode);
  const app = state.wecomCorps.app(known.corpid, known.app);
  if (!app) return reject(40014);
  if (app.disabled) return reject(50003);
  if (untrusted(app, req.ip)) return reject(60020);
  const p = app.permitted;
  if (p === false || (Array.isArray(p) && !p.includes(path))) return reject(48002);
  return { ok: true, token: verdict.token, app };
}

/** The corp of the `access_token` parameter, if WeCom issued it (for counters and faults). */
export function wecomTokenCorp(req: ApiRequest, state: EmulatorState): string | undefined {
  const value = queryParam(req, "access_token");
  return value === undefined ? undefined : state.wecomTokens.lookup(value)?.corpid;
}

/** `<corpid>/<app>` of the `access_token` parameter, if WeCom issued it. */
export function wecomTokenApp(req: ApiRequest, state: EmulatorState): string | undefined {
  const value = queryParam(req, "access_token");
  const token = value === undefined ? undefined : state.wecomTokens.lookup(value);
  return token ? `${token.corpid}/${token.app}` : undefined;
}

/** `expires_in` of a repeat answer: remaining seconds or the full life (R29, emulator choice). */
export function expiresIn(state: EmulatorState, expiresAt: number, lifetimeMs: number): number {
  return state.config.wecom.expiresIn === "full"
    ? lifetimeMs / 1000
    : Math.round((expiresAt - state.now()) / 1000);
}
