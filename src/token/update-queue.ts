/**
 * A per-subscriber FIFO of updates that a consumer awaits one at a time.
 * Credentials change about once an hour, so the queue stays tiny; the bound
 * only protects memory from a consumer that stopped reading entirely.
 *
 * The queue is bound to its consumer's signal once: a refresh wakes 10,000
 * waiting watchers at once, and adding and removing an abort listener per
 * update showed up in that fan-out's profile.
 */
export class UpdateQueue<T> {
  readonly #items: T[] = [];
  #waiter: { resolve(item: T): void; reject(reason: unknown): void } | undefined;
  #overflowed = false;
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
      this.#overflowed = true;
      return;
    }
    this.#items.push(item);
  }

  /** True once an item was dropped because the consumer fell behind by `limit`. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** The next item; rejects with the signal's reason once it aborts. One waiter at a time. */
  next(): Promise<T> {
    if (this.#signal.aborted) return Promise.reject(this.#signal.reason);
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
