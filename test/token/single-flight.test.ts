import { describe, expect, it } from "vitest";
import { SingleFlight } from "../../src/token/single-flight.js";

describe("SingleFlight", () => {
  it("runs one task per key for concurrent callers and shares its result", async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    let release: (v: number) => void = () => {};
    const task = () => {
      runs++;
      return new Promise<number>((r) => {
        release = r;
      });
    };
    const calls = Array.from({ length: 100 }, () => sf.run("k", task));
    expect(calls.filter((c) => c.started)).toHaveLength(1);
    release(42);
    expect(await Promise.all(calls.map((c) => c.promise))).toEqual(Array(100).fill(42));
    expect(runs).toBe(1);
    expect(sf.has("k")).toBe(false);
  });

  it("starts a new run after the previous one failed", async () => {
    const sf = new SingleFlight<number>();
    await expect(sf.run("k", () => Promise.reject(new Error("boom"))).promise).rejects.toThrow(
      "boom",
    );
    expect(await sf.run("k", async () => 7).promise).toBe(7);
  });

  it("keeps keys independent", () => {
    const sf = new SingleFlight<number>();
    const never = () => new Promise<number>(() => {});
    expect(sf.run("a", never).started).toBe(true);
    expect(sf.run("b", never).started).toBe(true);
  });
});
