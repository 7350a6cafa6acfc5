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
 * pushed to 10,000 streams at once.
 *
 * Like a generator: nothing runs until the first `next()` (a stream its
 * consumer drops unread never starts, so never ends either); an error thrown
 * by `start` rejects that `next()`; `return()` waits for a pending `next()` to
 * settle first, and the outcome is then that next()'s error if it failed, or
 * `canceled` (the consumer stopped reading).
 */
export function observeStream<T>(start: () => StreamScope<T>, canceled: unknown): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let it: AsyncIterator<T> | undefined;
      let end: ((outcome: unknown) => void) | undefined;
      let ended = false;
      let pending: Promise<unknown> | undefined;
      const finish = (outcome: unknown) => {
        if (ended) return;
        ended = true;
        end?.(outcome);
      };
      return {
        next(): Promise<IteratorResult<T>> {
          if (ended) return Promise.resolve({ done: true, value: undefined });
          if (!it) {
            try {
              const scope = start();
              end = scope.end;
              it = scope.source[Symbol.asyncIterator]();
            } catch (err) {
              finish(err);
              return Promise.reject(err);
            }
          }
          const result = it.next().then(
            (r) => {
              if (r.done) finish(undefined);
              return r;
            },
            (err: unknown) => {
              finish(err);
              throw err;
            },
          );
          // Kept as is, not `.catch()`ed: one promise less per item and layer;
          // the consumer handles its rejection, return() waits on it quietly.
          pending = result;
          return result;
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          if (pending) await pending.then(ignore, ignore);
          finish(canceled);
          await it?.return?.(value);
          return { done: true, value: value as T };
        },
      };
    },
  };
}

function ignore(): void {}
