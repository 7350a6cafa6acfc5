import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { onStreamEnd } from "../../src/rpc/interceptors/outcome.js";

type Message = StreamResponse["message"] extends AsyncIterable<infer M> ? M : never;

/** A stream response of `items`, failing with `error` after them if given. */
function response(items: number[], error?: Error): StreamResponse {
  async function* source() {
    for (const i of items) yield { i } as unknown as Message;
    if (error) throw error;
  }
  return { stream: true, message: source() } as unknown as StreamResponse;
}

async function drain(res: StreamResponse): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const m of res.message) out.push(m);
  return out;
}

describe("onStreamEnd", () => {
  it("joins an inner layer's observer: starts outermost first, ends innermost first, each once", async () => {
    const log: string[] = [];
    const layer = (name: string) => () => {
      log.push(`start ${name}`);
      return (outcome: unknown) => log.push(`end ${name} ${outcome === undefined ? "ok" : "err"}`);
    };
    const inner = onStreamEnd(response([1, 2]), layer("inner"));
    const outer = onStreamEnd(inner, layer("outer"));
    // One observer, not one per layer: the outer reads the inner's source, never the inner itself.
    const innerIterator = inner.message[Symbol.asyncIterator].bind(inner.message);
    let innerOpened = 0;
    inner.message[Symbol.asyncIterator] = () => {
      innerOpened++;
      return innerIterator();
    };
    expect(log).toEqual([]);
    expect(await drain(outer)).toEqual([{ i: 1 }, { i: 2 }]);
    expect(log).toEqual(["start outer", "start inner", "end inner ok", "end outer ok"]);
    expect(innerOpened).toBe(0);
  });

  it("hands every layer the stream's error", async () => {
    const seen: unknown[] = [];
    const boom = new ConnectError("upstream gone", Code.Unavailable);
    let res = onStreamEnd(response([1], boom), () => (o) => seen.push(o));
    res = onStreamEnd(res, () => (o) => seen.push(o));
    await expect(drain(res)).rejects.toBe(boom);
    expect(seen).toEqual([boom, boom]);
  });

  it("a layer whose start throws fails the first read and ends the layers already started", async () => {
    const seen: unknown[] = [];
    const refused = new ConnectError("no slot", Code.ResourceExhausted);
    let res = onStreamEnd(response([1]), () => {
      throw refused;
    });
    res = onStreamEnd(res, () => (o) => seen.push(o));
    await expect(drain(res)).rejects.toBe(refused);
    expect(seen).toEqual([refused]);
  });

  it("a client that stops reading ends every layer as canceled", async () => {
    const seen: string[] = [];
    let res = onStreamEnd(
      response([1, 2, 3]),
      () => (o) => seen.push(String((o as ConnectError).code)),
    );
    res = onStreamEnd(res, () => (o) => seen.push(String((o as ConnectError).code)));
    for await (const _ of res.message) break;
    expect(seen).toEqual([String(Code.Canceled), String(Code.Canceled)]);
  });

  it("never starts a stream nobody reads", () => {
    let started = 0;
    onStreamEnd(
      onStreamEnd(response([1]), () => {
        started++;
        return () => {};
      }),
      () => {
        started++;
        return () => {};
      },
    );
    expect(started).toBe(0);
  });
});
