/** What a stream wrapper sets up when the stream starts, and hears when it ends. */
export interface StreamScope<T> {
  readonly source: AsyncIterable<T>;
  /** Called exactly once: `undefined` on completion, the error, or `canceled`. */
  end(outcome: unknown): void;
}

/**
 * Wraps a server stream so that setup runs when it starts and `end` runs once
 * however it ends — what an `async function*` with `yield*` and `finally`
 * does, without an async generator per wrapper layer: each item costs one
 * `then` instead of a generator resumption, which matters when a refresh is
 * pushed to 10,000 streams at once. A class rather than closures: an idle
 * stream holds one small object per layer.
 *
 * Like a generator: nothing runs until the first `next()` (a stream its
 * consumer drops unread never starts, so never ends either); an error thrown
 * by `start` rejects that `next()`; `return()` waits for a pending `next()` to
 * settle first, and the outcome is then that next()'s error if it failed, or
 * `canceled` (the consumer stopped reading).
 */
export function observeStream<T>(start: () => StreamScope<T>, canceled: unknown): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => new ObservedIterator(start, canceled) };
}

class ObservedIterator<T> implements AsyncIterator<T> {
  #start: (() => StreamScope<T>) | undefined;
  #it: AsyncIterator<T> | undefined;
  #end: ((outcome: unknown) => void) | undefined;
  #ended = false;
  #pending: Promise<unknown> | undefined;

  constructor(
    start: () => StreamScope<T>,
    private readonly canceled: unknown,
  ) {
    this.#start = start;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    if (this.#start) {
      const start = this.#start;
      this.#start = undefined;
      try {
        const scope = start();
        this.#end = scope.end;
        this.#it = scope.source[Symbol.asyncIterator]();
      } catch (err) {
        this.#finish(err);
        return Promise.reject(err);
      }
    }
    const it = this.#it;
    if (!it) return Promise.resolve({ done: true, value: undefined });
    const result = it.next().then(
      (r) => {
        if (r.done) this.#finish(undefined);
        return r;
      },
      (err: unknown) => {
        this.#finish(err);
        throw err;
      },
    );
    // Kept as is, not `.catch()`ed: one promise less per item and layer;
    // the consumer handles its rejection, return() waits on it quietly.
    this.#pending = result;
    return result;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    if (this.#pending) await this.#pending.then(ignore, ignore);
    this.#finish(this.canceled);
    await this.#it?.return?.(value);
    return { done: true, value: value as T };
  }

  #finish(outcome: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#start = undefined;
    this.#end?.(outcome);
  }
}

function ignore(): void {}
