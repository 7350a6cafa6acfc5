import type { Clock } from "./clock.js";

/**
 * At most one pending timer per id on an injected clock. Setting a new time
 * for an id replaces the old one. Used for proactive refreshes: one entry per
 * credential the broker knows.
 */
export class TimerTable {
  readonly #timers = new Map<string, { at: number; cancel: () => void }>();
  #closed = false;

  constructor(private readonly clock: Clock) {}

  set(id: string, at: number, task: () => void): void {
    if (this.#closed) return;
    this.#timers.get(id)?.cancel();
    const cancel = this.clock.schedule(() => {
      this.#timers.delete(id);
      task();
    }, at - this.clock.now());
    this.#timers.set(id, { at, cancel });
  }

  /** When the timer for `id` fires, if one is pending. */
  at(id: string): number | undefined {
    return this.#timers.get(id)?.at;
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
  }
}
