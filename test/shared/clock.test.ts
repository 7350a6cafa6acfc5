import { describe, expect, it } from "vitest";
import { sleep } from "../../src/shared/clock.js";
import { FakeClock } from "../helpers/fake-clock.js";

describe("sleep on a fake clock", () => {
  it("resolves only once the clock passes the delay", async () => {
    const clock = new FakeClock(0);
    let done = false;
    const p = sleep(clock, 1000).then(() => {
      done = true;
    });
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
  });

  it("rejects with the abort reason and cancels its timer", async () => {
    const clock = new FakeClock(0);
    const ac = new AbortController();
    const p = sleep(clock, 1000, ac.signal);
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
    expect(clock.pending).toBe(0);
  });
});
