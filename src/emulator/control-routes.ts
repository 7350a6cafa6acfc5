import type { ApiRequest } from "./api-request.js";
import type { AppPatch, EmulatorControl, FaultSpec, RiskState } from "./control-types.js";
import { EmulatorControlError } from "./control-types.js";
import type { OAuthSettingsPatch, OAuthTarget, OAuthUserSpec } from "./oauth-types.js";
import { controlJson, type Reply } from "./reply.js";
import type { EmulatorApp, MeteredPath } from "./types.js";
import type { WecomAppPatch, WecomAppSpec, WecomCorpSpec, WecomLimits } from "./wecom-types.js";

type Body = Readonly<Record<string, unknown>>;

interface ControlRoute {
  readonly method: string;
  readonly pattern: RegExp;
  /** HTTP status on success; 200 unless noted. */
  readonly status?: number;
  /** Returns the answer body; `undefined` answers `{"ok":true}`. */
  readonly run: (c: EmulatorControl, req: ApiRequest, params: string[]) => unknown;
}

const OK = { ok: true } as const;
const APP = "/_emulator/apps/([^/]+)";
const CORP = "/_emulator/wecom/corps/([^/]+)";

/**
 * The control endpoints (R44). JSON in and out; failures answer
 * `{"error":"…"}` with 400 (bad input), 404 (unknown app, fault or path) or
 * 409 (app exists). Every one mirrors an `EmulatorControl` method.
 *
 * | Method | Path | Body → answer |
 * |---|---|---|
 * | GET | /_emulator/apps | → `AppInfo[]` (no secrets) |
 * | POST | /_emulator/apps | `EmulatorApp` → 201 `{ok}` |
 * | PATCH | /_emulator/apps/{appid} | `{type?, component?}` → `{ok}` |
 * | DELETE | /_emulator/apps/{appid} | → `{ok}` (its tokens die) |
 * | POST | /_emulator/apps/{appid}/reset-secret | `{secret}` → `{ok}` |
 * | POST | /_emulator/apps/{appid}/freeze, …/unfreeze | → `{ok}` |
 * | POST | /_emulator/apps/{appid}/flags | `{tokenForbidden?, accountFrozen?}` → `{ok}` |
 * | POST | /_emulator/apps/{appid}/ip-whitelist | `{ips: string[] \| null}` → `{ok}` |
 * | POST | /_emulator/apps/{appid}/risk | `{state: RiskState}` → `{ok}` |
 * | POST | /_emulator/apps/{appid}/limits | `{endpoint, daily?: n \| null, minute?: n \| null}` → `{ok}` |
 * | GET | /_emulator/apps/{appid}/quota | → `QuotaSnapshot` |
 * | POST | /_emulator/apps/{appid}/oauth/authorize | `OAuthUserSpec` → 201 `OAuthCodeInfo` |
 * | GET | /_emulator/apps/{appid}/oauth/grants?openid=… | → `OAuthGrantInfo[]` (token values) |
 * | POST | /_emulator/apps/{appid}/oauth/expire-refresh-token | `{openid}` or `{refreshToken}` → `{count}` |
 * | POST | /_emulator/apps/{appid}/oauth/void-refresh-token | `{openid}` or `{refreshToken}` → `{count}` |
 * | POST | /_emulator/apps/{appid}/oauth/password-change | `{openid}` → `{count}` |
 * | GET | /_emulator/apps/{appid}/oauth/settings | → `OAuthSettings` |
 * | POST | /_emulator/apps/{appid}/oauth/settings | `OAuthSettingsPatch` → `{ok}` |
 * | GET | /_emulator/wecom/corps | → `WecomAppInfo[]` of every corp (no secrets) |
 * | POST | /_emulator/wecom/corps | `WecomCorpSpec` → 201 `{ok}` |
 * | GET | /_emulator/wecom/corps/{corpid} | → `WecomAppInfo[]` |
 * | DELETE | /_emulator/wecom/corps/{corpid} | → `{ok}` (its tokens die) |
 * | POST | /_emulator/wecom/corps/{corpid}/apps | `WecomAppSpec` → 201 `{ok}` |
 * | PATCH | /_emulator/wecom/corps/{corpid}/apps/{agentid or name} | `WecomAppPatch` → `{ok}` |
 * | DELETE | /_emulator/wecom/corps/{corpid}/apps/{agentid or name} | → `{ok}` (its tokens die) |
 * | GET | /_emulator/wecom/tokens | → `WecomTokenInfo[]` (live, with values) |
 * | POST | /_emulator/wecom/tokens/invalidate | `{access_token}` → `{ok}` or 404 (R30) |
 * | GET | /_emulator/wecom/tickets | → `WecomTicketInfo[]` |
 * | GET | /_emulator/wecom/limits | → `WecomLimits` |
 * | POST | /_emulator/wecom/limits | `Partial<WecomLimits>` → `{ok}` |
 * | POST | /_emulator/faults | `FaultSpec` → 201 `{id}` |
 * | GET | /_emulator/faults | → `FaultInfo[]` |
 * | DELETE | /_emulator/faults | → `{ok}` |
 * | DELETE | /_emulator/faults/{id} | → `{ok}` or 404 |
 * | GET | /_emulator/counters | → `CounterSnapshot` |
 * | DELETE | /_emulator/counters | → `{ok}` |
 * | GET | /_emulator/tokens | → `LiveToken[]` |
 * | GET | /_emulator/tokens/check?access_token=… | → `TokenCheck` (not a call) |
 * | GET | /_emulator/clock | → `{now, iso}` |
 * | POST | /_emulator/clock/advance | `{ms}` or `{seconds}` → `{now, iso}` |
 * | POST | /_emulator/reset | → `{ok}` |
 */
const ROUTES: readonly ControlRoute[] = [
  route("GET", "/_emulator/apps", (c) => c.listApps()),
  route("POST", "/_emulator/apps", (c, r) => c.addApp(body(r) as unknown as EmulatorApp), 201),
  route("PATCH", APP, (c, r, [id]) => c.updateApp(id, body(r) as AppPatch)),
  route("DELETE", APP, (c, _r, [id]) => c.removeApp(id)),
  route("POST", `${APP}/reset-secret`, (c, r, [id]) => c.resetSecret(id, body(r).secret as string)),
  route("POST", `${APP}/freeze`, (c, _r, [id]) => c.freezeSecret(id)),
  route("POST", `${APP}/unfreeze`, (c, _r, [id]) => c.unfreezeSecret(id)),
  route("POST", `${APP}/flags`, (c, r, [id]) => c.setAccountFlags(id, body(r))),
  route("POST", `${APP}/ip-whitelist`, (c, r, [id]) =>
    c.setIpWhitelist(id, (body(r).ips ?? null) as string[] | null),
  ),
  route("POST", `${APP}/risk`, (c, r, [id]) => c.setRiskState(id, body(r).state as RiskState)),
  route("POST", `${APP}/limits`, (c, r, [id]) => {
    const b = body(r);
    const endpoint = b.endpoint as MeteredPath;
    if (b.daily === undefined && b.minute === undefined) bad("give daily and/or minute");
    if (b.daily !== undefined) c.setDailyLimit(id, endpoint, b.daily as number | null);
    if (b.minute !== undefined) c.setMinuteLimit(id, endpoint, b.minute as number | null);
  }),
  route("GET", `${APP}/quota`, (c, _r, [id]) => c.quota(id)),
  route(
    "POST",
    `${APP}/oauth/authorize`,
    (c, r, [id]) => c.authorizeUser(id, body(r) as unknown as OAuthUserSpec),
    201,
  ),
  route("GET", `${APP}/oauth/grants`, (c, r, [id]) =>
    c.oauthGrants(id, r.query.get("openid") ?? ""),
  ),
  route("POST", `${APP}/oauth/expire-refresh-token`, (c, r, [id]) => ({
    count: c.expireRefreshToken(id, body(r) as OAuthTarget),
  })),
  route("POST", `${APP}/oauth/void-refresh-token`, (c, r, [id]) => ({
    count: c.voidRefreshToken(id, body(r) as OAuthTarget),
  })),
  route("POST", `${APP}/oauth/password-change`, (c, r, [id]) => ({
    count: c.changeUserPassword(id, body(r).openid as string),
  })),
  route("GET", `${APP}/oauth/settings`, (c, _r, [id]) => c.oauthSettings(id)),
  route("POST", `${APP}/oauth/settings`, (c, r, [id]) =>
    c.setOAuthSettings(id, body(r) as OAuthSettingsPatch),
  ),
  route("GET", "/_emulator/wecom/corps", (c) => c.listWecomApps()),
  route("POST", "/_emulator/wecom/corps", (c, r) => c.addWecomCorp(wecomCorp(r)), 201),
  route("GET", CORP, (c, _r, [id]) => c.listWecomApps(id)),
  route("DELETE", CORP, (c, _r, [id]) => c.removeWecomCorp(id)),
  route(
    "POST",
    `${CORP}/apps`,
    (c, r, [id]) => c.addWecomApp(id, body(r) as unknown as WecomAppSpec),
    201,
  ),
  route("PATCH", `${CORP}/apps/([^/]+)`, (c, r, [id, app]) =>
    c.updateWecomApp(id, app, body(r) as WecomAppPatch),
  ),
  route("DELETE", `${CORP}/apps/([^/]+)`, (c, _r, [id, app]) => c.removeWecomApp(id, app)),
  route("GET", "/_emulator/wecom/tokens", (c) => c.wecomTokens()),
  route("POST", "/_emulator/wecom/tokens/invalidate", (c, r) =>
    c.invalidateWecomToken(body(r).access_token as string),
  ),
  route("GET", "/_emulator/wecom/tickets", (c) => c.wecomTickets()),
  route("GET", "/_emulator/wecom/limits", (c) => c.wecomLimits()),
  route("POST", "/_emulator/wecom/limits", (c, r) =>
    c.setWecomLimits(body(r) as Partial<WecomLimits>),
  ),
  route(
    "POST",
    "/_emulator/faults",
    (c, r) => ({ id: c.injectFault(body(r) as unknown as FaultSpec) }),
    201,
  ),
  route("GET", "/_emulator/faults", (c) => c.listFaults()),
  route("DELETE", "/_emulator/faults", (c) => c.clearFaults()),
  route("DELETE", "/_emulator/faults/([^/]+)", (c, _r, [id]) => {
    if (!c.removeFault(id)) throw new EmulatorControlError(404, `unknown fault ${id}`);
  }),
  route("GET", "/_emulator/counters", (c) => c.counters()),
  route("DELETE", "/_emulator/counters", (c) => c.resetCounters()),
  route("GET", "/_emulator/tokens", (c) => c.liveTokens()),
  route("GET", "/_emulator/tokens/check", (c, r) =>
    c.checkToken(r.query.get("access_token") ?? ""),
  ),
  route("GET", "/_emulator/clock", (c) => clock(c.now())),
  route("POST", "/_emulator/clock/advance", (c, r) => {
    const b = body(r);
    const ms = typeof b.seconds === "number" ? b.seconds * 1000 : b.ms;
    if (typeof ms !== "number") bad("give ms or seconds as a number");
    return clock(c.advanceClock(ms));
  }),
  route("POST", "/_emulator/reset", (c) => c.reset()),
];

/** Answers a request under `/_emulator/`. */
export function dispatchControl(req: ApiRequest, control: EmulatorControl): Reply {
  let pathMatched = false;
  for (const r of ROUTES) {
    const m = r.pattern.exec(req.path);
    if (!m) continue;
    pathMatched = true;
    if (r.method !== req.method) continue;
    try {
      const params = m.slice(1).map(decodeParam);
      const result = r.run(control, req, params);
      return controlJson(r.status ?? 200, result === undefined ? OK : result);
    } catch (error) {
      if (error instanceof EmulatorControlError) {
        return controlJson(error.status, { error: error.message });
      }
      throw error;
    }
  }
  return pathMatched
    ? controlJson(405, { error: `method ${req.method} not allowed on ${req.path}` })
    : controlJson(404, { error: `unknown control path ${req.path}` });
}

function route(
  method: string,
  path: string,
  run: (c: EmulatorControl, req: ApiRequest, params: [string, string]) => unknown,
  status?: number,
): ControlRoute {
  const pattern = new RegExp(`^${path}$`);
  const wrapped = (c: EmulatorControl, req: ApiRequest, params: string[]) =>
    run(c, req, params as [string, string]);
  return status === undefined
    ? { method, pattern, run: wrapped }
    : { method, pattern, run: wrapped, status };
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return bad(`malformed path parameter ${raw}`);
  }
}

function wecomCorp(req: ApiRequest): WecomCorpSpec {
  const b = body(req);
  // A corp with no apps yet is fine: apps can be added one by one.
  return { ...b, apps: b.apps ?? [] } as unknown as WecomCorpSpec;
}

function body(req: ApiRequest): Body {
  if (req.bodyMalformed) bad("body must be a JSON object");
  return req.body ?? {};
}

function bad(message: string): never {
  throw new EmulatorControlError(400, message);
}

function clock(now: number) {
  return { now, iso: new Date(now).toISOString() };
}
