/**
 * A per-subscriber FIFO of updates that a consumer awaits one at a time.
 * Credentials change about once an hour, so the queue stays tiny; the bound
 * only protects memory from a consumer that stopped reading entirely. A
 * consumer that falls behind by the bound is resynchronised: the backlog is
 * dropped and the newest update kept, so it never ends on a stale version.
 *
 * The queue is bound to its consumer's signal once: a refresh wakes 10,000
 * waiting watchers at once, and adding and removing an abort listener per
 * update showed up in that fan-out's profile.
 */
export class UpdateQueue<T> {
  readonly #items: T[] = [];
  #waiter: { resolve(item: T): void; reject(reason: unknown): void } | undefined;
  #resyncs = 0;
  /** Set by `fail`: the consumer's next `next()` rejects with it. */
  #failure: { reason: unknown } | undefined;
  readonly #signal: AbortSignal;
  readonly #onAbort = () => {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(this.#signal.reason);
  };

  constructor(
    signal: AbortSignal,
    private readonly limit = 1000,
  ) {
    this.#signal = signal;
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  push(item: T): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(item);
      return;
    }
    if (this.#items.length >= this.limit) {
      // Only the newest update matters to a credential watcher: skip to it.
      this.#items.length = 0;
      this.#resyncs++;
    }
    this.#items.push(item);
  }

  /** How often the consumer fell behind by `limit` and was moved to the newest update. */
  get resyncs(): number {
    return this.#resyncs;
  }

  /**
   * Ends the queue with `reason` (the credential left the config): the
   * waiting `next()` and every later one reject with it; pending updates are dropped.
   */
  fail(reason: unknown): void {
    this.#failure ??= { reason };
    this.#items.length = 0;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(reason);
  }

  /** The next item; rejects with the signal's reason once it aborts (or `fail`'s). One waiter at a time. */
  next(): Promise<T> {
    if (this.#signal.aborted) return Promise.reject(this.#signal.reason);
    if (this.#failure) return Promise.reject(this.#failure.reason);
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Stops listening to the signal (the consumer is gone). */
  close(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#waiter = undefined;
  }
}
