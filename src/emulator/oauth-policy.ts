import type { Calendar } from "./calendar.js";
import type { OAuthConfig } from "./config.js";
import { EmulatorControlError } from "./control-types.js";
import type { OAuthSettings, OAuthSettingsPatch } from "./oauth-types.js";
import type { AppType, Limit } from "./types.js";

const DAY_S = 86_400;

/** Code life by account type: 5 min (公众号 web OAuth), 10 min for website apps (R33). */
const CODE_TTL_S: Record<AppType, number> = {
  official_account: 300,
  mini_program: 300,
  test_account: 300,
  website_app: 600,
  mobile_app: 300,
};

/** Refresh token life by account type: 30 days, 180 for mobile apps (R35, §12 C7). */
const REFRESH_TTL_S: Record<AppType, number> = {
  official_account: 30 * DAY_S,
  mini_program: 30 * DAY_S,
  test_account: 30 * DAY_S,
  website_app: 30 * DAY_S,
  mobile_app: 180 * DAY_S,
};

interface Override {
  codeTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  minuteLimit?: Limit;
}

interface Bucket {
  minute: number;
  calls: number;
}

/**
 * Web OAuth lifetimes and the per-minute limit (R33, R35, R37). Settings
 * resolve as: per-account override → `oauth` option → account type default.
 * The minute counter is per (account, endpoint), since each API page states
 * its own 50,000/min, and counts every call that names a known account,
 * failures included (a retry inside the minute "is wasted and counts", §12
 * C5). There is no daily quota (R37).
 */
export class OAuthPolicy {
  readonly #config: OAuthConfig;
  readonly #calendar: Calendar;
  readonly #typeOf: (appid: string) => AppType;
  readonly #overrides = new Map<string, Override>();
  readonly #minutes = new Map<string, Bucket>();

  constructor(config: OAuthConfig, calendar: Calendar, typeOf: (appid: string) => AppType) {
    this.#config = config;
    this.#calendar = calendar;
    this.#typeOf = typeOf;
  }

  get expiredCodeErrcode(): 40029 | 42003 {
    return this.#config.expiredCodeErrcode;
  }

  get accessTokenLifetimeMs(): number {
    return this.#config.accessTokenLifetimeMs;
  }

  settings(appid: string): OAuthSettings {
    const o = this.#overrides.get(appid) ?? {};
    const type = this.#typeOf(appid);
    const configured = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
    return {
      codeTtlSeconds: o.codeTtlSeconds ?? configured(this.#config.codeTtlMs) ?? CODE_TTL_S[type],
      refreshTokenTtlSeconds:
        o.refreshTokenTtlSeconds ??
        configured(this.#config.refreshTokenTtlMs) ??
        REFRESH_TTL_S[type],
      minuteLimit: o.minuteLimit !== undefined ? o.minuteLimit : this.#config.minuteLimit,
    };
  }

  codeTtlMs(appid: string): number {
    return this.settings(appid).codeTtlSeconds * 1000;
  }

  refreshTokenTtlMs(appid: string): number {
    return this.settings(appid).refreshTokenTtlSeconds * 1000;
  }

  set(appid: string, patch: OAuthSettingsPatch): void {
    const next: Override = { ...this.#overrides.get(appid) };
    for (const name of ["codeTtlSeconds", "refreshTokenTtlSeconds"] as const) {
      const value = patch[name];
      if (value === undefined) continue;
      if (value === null) delete next[name];
      else if (typeof value === "number" && value > 0 && Number.isFinite(value)) next[name] = value;
      else throw new EmulatorControlError(400, `${name} must be a positive number or null`);
    }
    const limit = patch.minuteLimit;
    if (limit !== undefined) {
      if (limit !== null && !(Number.isInteger(limit) && limit >= 0)) {
        throw new EmulatorControlError(400, "minuteLimit must be an integer ≥ 0 or null");
      }
      next.minuteLimit = limit;
    }
    this.#overrides.set(appid, next);
  }

  /** Counts one call of `endpoint` by `appid`; true when it is over this minute's limit (45011). */
  overMinuteLimit(appid: string, endpoint: string, now: number): boolean {
    const key = `${endpoint}\u0000${appid}`;
    const minute = this.#calendar.minuteKey(now);
    let bucket = this.#minutes.get(key);
    if (!bucket || bucket.minute !== minute) {
      bucket = { minute, calls: 0 };
      this.#minutes.set(key, bucket);
    }
    bucket.calls += 1;
    const limit = this.settings(appid).minuteLimit;
    return limit !== null && bucket.calls > limit;
  }

  clear(): void {
    this.#overrides.clear();
    this.#minutes.clear();
  }
}
