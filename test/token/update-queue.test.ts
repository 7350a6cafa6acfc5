import { describe, expect, it } from "vitest";
import { UpdateQueue } from "../../src/token/update-queue.js";

describe("UpdateQueue", () => {
  it("hands items out in order, to a waiter at once or later from the buffer", async () => {
    const q = new UpdateQueue<number>(new AbortController().signal);
    const waiting = q.next();
    q.push(1);
    q.push(2);
    q.push(3);
    expect(await waiting).toBe(1);
    expect(await q.next()).toBe(2);
    expect(await q.next()).toBe(3);
  });

  it("rejects a pending and every later next() with the signal's reason", async () => {
    const ac = new AbortController();
    const q = new UpdateQueue<number>(ac.signal);
    const waiting = q.next();
    const reason = new Error("stream ended");
    ac.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    q.push(1);
    await expect(q.next()).rejects.toBe(reason);
  });

  it("resynchronises a consumer that fell behind to the newest item, never leaving it stale", async () => {
    const q = new UpdateQueue<number>(new AbortController().signal, 2);
    for (let i = 0; i < 5; i++) q.push(i);
    // Backlogs of 2 were dropped twice; the newest update is always kept.
    expect(q.resyncs).toBe(2);
    expect(await q.next()).toBe(4);
    q.push(5);
    expect(await q.next()).toBe(5);
  });

  it("stops listening to the signal once closed", async () => {
    const ac = new AbortController();
    const q = new UpdateQueue<number>(ac.signal);
    q.close();
    expect(() => ac.abort(new Error("late"))).not.toThrow();
  });
});
