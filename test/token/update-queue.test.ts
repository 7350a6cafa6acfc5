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

  it("drops items beyond its limit and says so", async () => {
    const q = new UpdateQueue<number>(new AbortController().signal, 2);
    for (let i = 0; i < 5; i++) q.push(i);
    expect(q.overflowed).toBe(true);
    expect(await q.next()).toBe(0);
    expect(await q.next()).toBe(1);
  });

  it("stops listening to the signal once closed", async () => {
    const ac = new AbortController();
    const q = new UpdateQueue<number>(ac.signal);
    q.close();
    expect(() => ac.abort(new Error("late"))).not.toThrow();
  });
});
