/**
 * A per-subscriber FIFO of updates that a consumer awaits one at a time.
 * Credentials change about once an hour, so the queue stays tiny; the bound
 * only protects memory from a consumer that stopped reading entirely.
 */
export class UpdateQueue<T> {
  readonly #items: T[] = [];
  #waiter: ((item: T) => void) | undefined;
  #overflowed = false;

  constructor(private readonly limit = 1000) {}

  push(item: T): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(item);
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

  /** The next item; rejects with the signal's reason when it aborts. */
  next(signal: AbortSignal): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#waiter = undefined;
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiter = (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      };
    });
  }
}
