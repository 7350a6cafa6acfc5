import type { WecomLimits } from "./wecom-types.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export const DEFAULT_WECOM_LIMITS: WecomLimits = {
  perMinute: 10_000,
  perHour: 150_000,
  ticketsPerCorpHour: 400,
  ticketsPerAppHour: 100,
  failedGettokenPerHour: 2000,
};

interface Bucket {
  period: number;
  used: number;
}

/**
 * WeCom's frequency limits (R31, R32) on the emulator's clock. Windows are
 * clock minutes and clock hours (emulator choice; WeCom does not say whether
 * they slide). A block starts at the call that went over and lasts 60 s
 * (minute limit) or 60 min (hour limit, failures block), whatever window
 * follows (facts §6.2, C10). Blocked calls answer 45009 and count nowhere.
 */
export class WecomLimiter {
  #limits: WecomLimits;
  readonly #initial: WecomLimits;
  readonly #buckets = new Map<string, Bucket>();
  readonly #blockedUntil = new Map<string, number>();

  constructor(limits: WecomLimits) {
    this.#initial = { ...limits };
    this.#limits = { ...limits };
  }

  get limits(): WecomLimits {
    return { ...this.#limits };
  }

  set(patch: Partial<WecomLimits>): void {
    this.#limits = { ...this.#limits, ...patch };
  }

  /**
   * One call of (corp, api) (R31): 45009 while the pair is blocked;
   * otherwise the call counts, and going over a limit answers 45009 and
   * starts the block. `undefined`: the call may proceed.
   */
  call(corpid: string, api: string, now: number): 45009 | undefined {
    const pair = `${api}\u0000${corpid}`;
    if (this.#blocked(pair, now)) return 45009;
    const minute = this.#bump(`m\u0000${pair}`, Math.floor(now / MINUTE_MS));
    const hour = this.#bump(`h\u0000${pair}`, Math.floor(now / HOUR_MS));
    const { perMinute, perHour } = this.#limits;
    if (perHour !== null && hour > perHour) return this.#block(pair, now + HOUR_MS);
    if (perMinute !== null && minute > perMinute) return this.#block(pair, now + MINUTE_MS);
    return undefined;
  }

  /** gettoken is blocked for the corp after too many failures in an hour (⚠, §6.1). */
  gettokenBlocked(corpid: string, now: number): boolean {
    return this.#blocked(`fail\u0000${corpid}`, now);
  }

  /** One failed gettoken of a known corp; the one that reaches the limit starts the 1 h block. */
  gettokenFailed(corpid: string, now: number): void {
    const limit = this.#limits.failedGettokenPerHour;
    const failed = this.#bump(`f\u0000${corpid}`, Math.floor(now / HOUR_MS));
    if (limit !== null && failed >= limit) this.#block(`fail\u0000${corpid}`, now + HOUR_MS);
  }

  /**
   * One ticket fetch (R32): 45009 when the corp or the app has used its
   * hourly allowance, which a rejected fetch does not use.
   */
  ticket(corpid: string, app: string, now: number): 45009 | undefined {
    const hour = Math.floor(now / HOUR_MS);
    const corpKey = `tc\u0000${corpid}`;
    const appKey = `ta\u0000${corpid}\u0000${app}`;
    const { ticketsPerCorpHour, ticketsPerAppHour } = this.#limits;
    if (ticketsPerCorpHour !== null && this.#read(corpKey, hour) >= ticketsPerCorpHour) {
      return 45009;
    }
    if (ticketsPerAppHour !== null && this.#read(appKey, hour) >= ticketsPerAppHour) return 45009;
    this.#bump(corpKey, hour);
    this.#bump(appKey, hour);
    return undefined;
  }

  /** Forgets counts and blocks; `limitsToo` also restores the configured limits. */
  clear(limitsToo: boolean): void {
    this.#buckets.clear();
    this.#blockedUntil.clear();
    if (limitsToo) this.#limits = { ...this.#initial };
  }

  #blocked(key: string, now: number): boolean {
    const until = this.#blockedUntil.get(key);
    return until !== undefined && now < until;
  }

  #block(key: string, until: number): 45009 {
    this.#blockedUntil.set(key, until);
    return 45009;
  }

  #read(key: string, period: number): number {
    const b = this.#buckets.get(key);
    return b && b.period === period ? b.used : 0;
  }

  #bump(key: string, period: number): number {
    const b = this.#buckets.get(key);
    if (b && b.period === period) return ++b.used;
    this.#buckets.set(key, { period, used: 1 });
    return 1;
  }
}
