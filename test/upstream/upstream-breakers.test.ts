import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/shared/logger.js";
import {
  type BreakerState,
  CircuitOpenError,
  UpstreamBreakers,
} from "../../src/upstream/upstream-breakers.js";
import { UpstreamError } from "../../src/upstream/upstream-error.js";
import { FakeClock } from "../helpers/fake-clock.js";

const EP = "/cgi-bin/token";
const busy = () => Promise.reject(new UpstreamError(EP, "system error", -1));
const http502 = () => Promise.reject(new UpstreamError(EP, "HTTP 502"));
const badSecret = () => Promise.reject(new UpstreamError(EP, "invalid appsecret", 40125));
const ok = () => Promise.resolve("token");

describe("UpstreamBreakers (opossum on an injected clock)", () => {
  let b: UpstreamBreakers;
  afterEach(() => b.close());

  function make(clock: FakeClock, transitions: BreakerState[] = []) {
    b = new UpstreamBreakers({
      clock,
      logger: silentLogger(),
      policy: { errorThresholdPercent: 50, volumeThreshold: 3, resetMs: 30_000, windowMs: 60_000 },
      onStateChange: (_app, _ep, s) => transitions.push(s),
    });
    return b;
  }

  it("opens after 3 WeChat faults and then rejects without calling WeChat", async () => {
    const clock = new FakeClock(0);
    make(clock);
    for (const fault of [busy, http502, busy])
      await expect(b.run("a", EP, fault)).rejects.toThrow(UpstreamError);
    expect(b.state("a", EP)).toBe("open");
    let called = false;
    const err = await b
      .run("a", EP, async () => {
        called = true;
        return "x";
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAt).toBe(30_000);
    expect(b.state("other-app", EP)).toBe("closed");
  });

  it("lets one probe through after the reset time and closes on its success", async () => {
    const clock = new FakeClock(0);
    const transitions: BreakerState[] = [];
    make(clock, transitions);
    for (let i = 0; i < 3; i++) await b.run("a", EP, busy).catch(() => {});
    await clock.advance(29_999);
    await expect(b.run("a", EP, ok)).rejects.toThrow(CircuitOpenError);
    await clock.advance(1);
    expect(b.state("a", EP)).toBe("half_open");
    expect(await b.run("a", EP, ok)).toBe("token");
    expect(b.state("a", EP)).toBe("closed");
    expect(transitions).toEqual(["open", "half_open", "closed"]);
  });

  it("reopens when the probe fails, and probes again one reset later", async () => {
    const clock = new FakeClock(0);
    const transitions: BreakerState[] = [];
    make(clock, transitions);
    for (let i = 0; i < 3; i++) await b.run("a", EP, busy).catch(() => {});
    await clock.advance(30_000);
    await expect(b.run("a", EP, busy)).rejects.toThrow("system error");
    expect(b.state("a", EP)).toBe("open");
    await clock.advance(30_000);
    expect(await b.run("a", EP, ok)).toBe("token");
    expect(transitions).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("never opens on configuration errors: they are verdicts, not outages", async () => {
    const clock = new FakeClock(0);
    make(clock);
    for (let i = 0; i < 10; i++) await expect(b.run("a", EP, badSecret)).rejects.toThrow("40125");
    expect(b.state("a", EP)).toBe("closed");
  });

  it("forgets faults older than the window", async () => {
    const clock = new FakeClock(0);
    make(clock);
    await b.run("a", EP, busy).catch(() => {});
    await b.run("a", EP, busy).catch(() => {});
    await clock.advance(61_000);
    await b.run("a", EP, ok);
    await b.run("a", EP, busy).catch(() => {});
    expect(b.state("a", EP)).toBe("closed");
  });
});
