/**
 * Time as the source reads it. The system clock by default; tests pass a fake
 * one (the broker's tests drive hours of token lifetimes with it).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `delayMs`; returns a function that cancels it. Never keeps the process alive. */
  schedule(fn: () => void, delayMs: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(fn, delayMs) {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Resolves after `delayMs` on `clock`, or at once when `signal` aborts (never rejects). */
export function pause(clock: Clock, delayMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      cancel();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const cancel = clock.schedule(done, delayMs);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Exponential backoff with full jitter: attempt 1 → [0, initial), doubling up to `max`. */
export function backoffMs(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: number,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + random / 2));
}
