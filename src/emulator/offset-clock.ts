import type { Clock } from "../shared/clock.js";

/**
 * A Clock that reads `base` plus an offset that only grows. It lets
 * `POST /_emulator/clock/advance` (and `control.advanceClock`) jump the
 * emulator hours ahead while the process runs on the system clock.
 *
 * Only `now()` is shifted. `schedule` delegates to `base` unchanged: the
 * emulator computes every expiry lazily from `now()` and never schedules on
 * this clock, so advancing cannot skip a pending timer.
 */
export class OffsetClock implements Clock {
  readonly #base: Clock;
  #offsetMs = 0;

  constructor(base: Clock) {
    this.#base = base;
  }

  now(): number {
    return this.#base.now() + this.#offsetMs;
  }

  schedule(fn: () => void, delayMs: number): () => void {
    return this.#base.schedule(fn, delayMs);
  }

  /** Total amount added by `advance` so far. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Moves time forward by `ms` (a finite number ≥ 0) and returns the new now. */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`clock can only move forward by a finite amount, got ${ms}`);
    }
    this.#offsetMs += ms;
    return this.now();
  }
}
