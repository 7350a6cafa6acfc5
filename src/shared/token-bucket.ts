/**
 * A token bucket on an injected time source: holds up to `burst` tokens,
 * starts full, refills `ratePerSecond` per second, each call takes one.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes a token: 0 when taken, else the milliseconds until one is available. */
  take(now: number): number {
    // A clock that steps back refills nothing, and refilling goes on from the
    // new time (no stall until the old time comes round again).
    const elapsed = Math.max(0, now - this.#at);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    this.#at = now;
    // The epsilon absorbs float error (0.1 + 0.2 refills) so a caller told to
    // wait N ms is admitted after N ms.
    if (this.#tokens >= 1 - 1e-9) {
      this.#tokens = Math.max(0, this.#tokens - 1);
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSecond - 1e-6));
  }
}
