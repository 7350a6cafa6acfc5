import type { Clock } from "./clock.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A Clock whose time moves only when its owner says so: tests and benchmarks
 * simulate hours of token lifetimes with it in milliseconds. `advance` fires
 * due timers in time order and lets promise callbacks run between them, so
 * code that awaits after a timer sees the time at which that timer fired.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1, 4, 0, 0)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  schedule(fn: () => void, delayMs: number): () => void {
    const timer: Timer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await flushMicrotasks();
      const next = this.#timers
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
    await flushMicrotasks();
  }

  /** Sets the time without firing timers (for emulator day boundaries etc.). */
  set(ms: number): void {
    this.#now = ms;
  }
}

/** Lets pending promise callbacks (and I/O callbacks already queued) run. */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
