/**
 * At most one run of an async task per key at a time: callers that arrive
 * while one runs share its result. This is what turns N concurrent callers on
 * a cold cache into one upstream fetch.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  /** Number of runs in progress. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** The run for `key` in progress, if any. */
  current(key: string): Promise<T> | undefined {
    return this.#inFlight.get(key);
  }

  /** True if a run for `key` is in progress. */
  has(key: string): boolean {
    return this.#inFlight.has(key);
  }

  /** Joins the run for `key`, or starts `task` if none is in progress. */
  run(key: string, task: () => Promise<T>): { promise: Promise<T>; started: boolean } {
    const existing = this.#inFlight.get(key);
    if (existing) return { promise: existing, started: false };
    const promise = task().finally(() => {
      this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, promise);
    return { promise, started: true };
  }

  /** Settles when every run in progress has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight.values()]);
  }
}
