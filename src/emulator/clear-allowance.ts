import type { Calendar } from "./calendar.js";

/**
 * A per-account allowance of quota clears that refills each calendar month
 * or day: clear_quota + clear_quota/v2 share one of 10 a month (R24, R25);
 * openapi/quota/clear has its own 50 (R26).
 */
export class ClearAllowance {
  readonly #limit: number;
  readonly #periodOf: (ms: number) => number;
  readonly #used = new Map<string, { period: number; used: number }>();

  constructor(limit: number, period: "month" | "day", calendar: Calendar) {
    this.#limit = limit;
    this.#periodOf = period === "month" ? calendar.monthKey : calendar.dayKey;
  }

  /** Uses one clear; false (and nothing used) when the allowance is spent (48006). */
  take(appid: string, now: number): boolean {
    const period = this.#periodOf(now);
    const held = this.#used.get(appid);
    const used = held && held.period === period ? held.used : 0;
    if (used >= this.#limit) return false;
    this.#used.set(appid, { period, used: used + 1 });
    return true;
  }

  clear(): void {
    this.#used.clear();
  }
}
