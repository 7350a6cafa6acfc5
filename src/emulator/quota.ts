import type { Calendar } from "./calendar.js";
import type { QuotaSnapshot } from "./control-types.js";
import type { AppType, Limit, MeteredPath } from "./types.js";

export const FORCE_METER = "/cgi-bin/stable_token#force" satisfies MeteredPath;

export const METERED_PATHS: readonly MeteredPath[] = [
  "/cgi-bin/token",
  "/cgi-bin/stable_token",
  FORCE_METER,
  "/cgi-bin/ticket/getticket",
  "/cgi-bin/getcallbackip",
  "/cgi-bin/get_api_domain_ip",
];

export function isMeteredPath(value: unknown): value is MeteredPath {
  return (METERED_PATHS as readonly unknown[]).includes(value);
}

/** Classic token daily quota per account type (R5). */
const CLASSIC_DAILY: Record<AppType, number> = {
  official_account: 2000,
  mini_program: 10000,
  test_account: 200,
  // Website and mobile apps: unpublished; the official-account figure (emulator choice).
  website_app: 2000,
  mobile_app: 2000,
};

const DEFAULT_DAILY: Record<MeteredPath, Limit> = {
  "/cgi-bin/token": 2000,
  "/cgi-bin/stable_token": 500_000,
  [FORCE_METER]: 20,
  "/cgi-bin/ticket/getticket": null,
  "/cgi-bin/getcallbackip": null,
  "/cgi-bin/get_api_domain_ip": 1000,
};

const DEFAULT_MINUTE: Record<MeteredPath, Limit> = {
  "/cgi-bin/token": null,
  "/cgi-bin/stable_token": 10_000,
  [FORCE_METER]: null,
  "/cgi-bin/ticket/getticket": null,
  "/cgi-bin/getcallbackip": null,
  "/cgi-bin/get_api_domain_ip": null,
};

interface Bucket {
  period: number;
  used: number;
}

export interface QuotaDefaults {
  readonly dailyLimits: Partial<Record<MeteredPath, Limit>>;
  readonly minuteLimits: Partial<Record<MeteredPath, Limit>>;
}

/**
 * Daily and per-minute call counters per (appid, metered path) (R5, R18,
 * R22). Buckets reset lazily when the calendar day or minute changes (R27).
 * Limits resolve as: per-app override → configured default → built-in
 * default (which for `/cgi-bin/token` depends on the account type).
 */
export class QuotaLedger {
  readonly #calendar: Calendar;
  readonly #defaults: QuotaDefaults;
  readonly #typeOf: (appid: string) => AppType;
  readonly #daily = new Map<string, Bucket>();
  readonly #minute = new Map<string, Bucket>();
  readonly #dailyOverrides = new Map<string, Limit>();
  readonly #minuteOverrides = new Map<string, Limit>();

  constructor(calendar: Calendar, defaults: QuotaDefaults, typeOf: (appid: string) => AppType) {
    this.#calendar = calendar;
    this.#defaults = defaults;
    this.#typeOf = typeOf;
  }

  dailyLimit(appid: string, path: MeteredPath): Limit {
    const override = this.#dailyOverrides.get(key(appid, path));
    if (override !== undefined) return override;
    const configured = this.#defaults.dailyLimits[path];
    if (configured !== undefined) return configured;
    if (path === "/cgi-bin/token") return CLASSIC_DAILY[this.#typeOf(appid)];
    return DEFAULT_DAILY[path];
  }

  minuteLimit(appid: string, path: MeteredPath): Limit {
    const override = this.#minuteOverrides.get(key(appid, path));
    if (override !== undefined) return override;
    const configured = this.#defaults.minuteLimits[path];
    return configured !== undefined ? configured : DEFAULT_MINUTE[path];
  }

  setDailyLimit(appid: string, path: MeteredPath, limit: Limit): void {
    this.#dailyOverrides.set(key(appid, path), limit);
  }

  setMinuteLimit(appid: string, path: MeteredPath, limit: Limit): void {
    this.#minuteOverrides.set(key(appid, path), limit);
  }

  /** Calls counted today. */
  used(appid: string, path: MeteredPath, now: number): number {
    return read(this.#daily, key(appid, path), this.#calendar.dayKey(now));
  }

  /**
   * The errcode the next call would get: 45009 when today's allowance is used
   * up (checked first, since it lasts longer), 45011 for this minute's.
   */
  exceeded(appid: string, path: MeteredPath, now: number): 45009 | 45011 | undefined {
    const daily = this.dailyLimit(appid, path);
    if (daily !== null && this.used(appid, path, now) >= daily) return 45009;
    const minute = this.minuteLimit(appid, path);
    const k = key(appid, path);
    if (minute !== null && read(this.#minute, k, this.#calendar.minuteKey(now)) >= minute) {
      return 45011;
    }
    return undefined;
  }

  consume(appid: string, path: MeteredPath, now: number): void {
    const k = key(appid, path);
    bump(this.#daily, k, this.#calendar.dayKey(now));
    bump(this.#minute, k, this.#calendar.minuteKey(now));
  }

  /** Resets every daily counter of `appid` (clear_quota, R24–R25). */
  clearAll(appid: string): void {
    for (const path of METERED_PATHS) this.#daily.delete(key(appid, path));
  }

  /** Resets one API's daily counter; the stable path includes its force allowance (R26). */
  clearPath(appid: string, path: MeteredPath): void {
    this.#daily.delete(key(appid, path));
    if (path === "/cgi-bin/stable_token") this.#daily.delete(key(appid, FORCE_METER));
  }

  snapshot(appid: string, now: number): QuotaSnapshot {
    const entries = METERED_PATHS.map((path) => {
      const dailyLimit = this.dailyLimit(appid, path);
      const used = this.used(appid, path, now);
      const remain = dailyLimit === null ? null : Math.max(0, dailyLimit - used);
      return [path, { dailyLimit, used, remain, minuteLimit: this.minuteLimit(appid, path) }];
    });
    return Object.fromEntries(entries) as QuotaSnapshot;
  }

  clear(): void {
    this.#daily.clear();
    this.#minute.clear();
    this.#dailyOverrides.clear();
    this.#minuteOverrides.clear();
  }
}

function key(appid: string, path: MeteredPath): string {
  return `${path}\u0000${appid}`;
}

function read(buckets: Map<string, Bucket>, k: string, period: number): number {
  const bucket = buckets.get(k);
  return bucket && bucket.period === period ? bucket.used : 0;
}

function bump(buckets: Map<string, Bucket>, k: string, period: number): void {
  const bucket = buckets.get(k);
  if (bucket && bucket.period === period) bucket.used += 1;
  else buckets.set(k, { period, used: 1 });
}
