import { describe, expect, it } from "vitest";
import { observeStream } from "../../src/shared/observe-stream.js";

const CANCELED = new Error("canceled");

async function* items(n: number, failWith?: Error): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
  if (failWith) throw failWith;
}

function observed(source: () => AsyncIterable<number>) {
  const log: string[] = [];
  const outcomes: unknown[] = [];
  const stream = observeStream(() => {
    log.push("start");
    return { source: source(), end: (o) => outcomes.push(o) };
  }, CANCELED);
  return { stream, log, outcomes };
}

describe("observeStream", () => {
  it("passes every item through and ends once with undefined on completion", async () => {
    const { stream, log, outcomes } = observed(() => items(3));
    const seen: number[] = [];
    for await (const x of stream) seen.push(x);
    expect(seen).toEqual([0, 1, 2]);
    expect(log).toEqual(["start"]);
    expect(outcomes).toEqual([undefined]);
  });

  it("ends with the source's error, and rethrows it", async () => {
    const boom = new Error("boom");
    const { stream, outcomes } = observed(() => items(2, boom));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const x of stream) seen.push(x);
      })(),
    ).rejects.toBe(boom);
    expect(seen).toEqual([0, 1]);
    expect(outcomes).toEqual([boom]);
  });

  it("ends with `canceled` when the consumer stops reading, and closes the source", async () => {
    let closed = false;
    const { stream, outcomes } = observed(() =>
      (async function* () {
        try {
          yield* items(10);
        } finally {
          closed = true;
        }
      })(),
    );
    for await (const x of stream) if (x === 1) break;
    expect(outcomes).toEqual([CANCELED]);
    expect(closed).toBe(true);
  });

  it("does not start before the first next(), nor end if dropped unread", async () => {
    const { stream, log, outcomes } = observed(() => items(1));
    const it = stream[Symbol.asyncIterator]();
    expect(log).toEqual([]);
    await it.return?.();
    expect(log).toEqual([]);
    expect(outcomes).toEqual([]);
  });

  it("rejects the first next() when setup throws, without calling end", async () => {
    const refused = new Error("refused");
    const outcomes: unknown[] = [];
    const stream = observeStream<number>(() => {
      throw refused;
    }, CANCELED);
    const it = stream[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toBe(refused);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(outcomes).toEqual([]);
  });

  it("on return() during a pending next(), lets it settle and ends with its error", async () => {
    let fail: (err: Error) => void = () => {};
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          new Promise<IteratorResult<number>>((_, reject) => {
            fail = reject;
          }),
        return: async () => ({ done: true, value: undefined }),
      }),
    };
    const { stream, outcomes } = observed(() => source);
    const it = stream[Symbol.asyncIterator]();
    const next = it.next();
    next.catch(() => {});
    const returned = it.return?.();
    const shutdown = new Error("shutting down");
    fail(shutdown);
    await returned;
    expect(outcomes).toEqual([shutdown]);
  });
});
