import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_BREAKER_POLICY } from "../../src/upstream/upstream-breakers.js";
import {
  never,
  OA,
  type ResilienceHarness,
  type ResilienceOptions,
  sample,
  startResilienceHarness,
  TOKEN_PATH,
} from "../helpers/resilience-harness.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

let h: ResilienceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(options: ResilienceOptions = {}): Promise<ResilienceHarness> {
  h = await startResilienceHarness(options);
  return h;
}

describe("WeChat down while a valid token is cached (production breaker policy)", () => {
  it("serves the cached token through a 30-minute outage, probes at most once per 30 s, and recovers with one call", async () => {
    // A 30 min margin (the 25% cap of a 7200 s token) puts the scheduled
    // refresh ≥ 30 min before expiry, so the token outlives the outage.
    const h = await start({ policy: { marginMs: 30 * MINUTE } });
    const first = await h.manager.get(OA.id, "access_token", never);
    expect(h.calls()).toBe(1);
    const outageStart = h.manager.nextRefreshAt(OA.id, "access_token");
    if (outageStart === undefined) throw new Error("no refresh planned");
    const outageEnd = outageStart + 30 * MINUTE;
    // Precondition: still servable (30 s safety) at the end of the outage.
    expect(first.expiresAt - 30 * SECOND).toBeGreaterThan(outageEnd);

    await h.advanceTo(outageStart - 1, { stepMs: MINUTE });
    expect(h.calls()).toBe(1);
    h.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      appid: OA.appid,
      action: { type: "http", status: 503 },
    });

    const callTimes: number[] = [];
    let seen = h.calls();
    let served = 0;
    const failures: unknown[] = [];
    let overdueSeen = false;
    let steps = 0;
    await h.advanceTo(outageEnd, {
      async onStep(now) {
        for (; seen < h.calls(); seen++) callTimes.push(now);
        if (++steps % 10 !== 0) return;
        // A caller every ~10 s: GetToken never fails and returns the cached token.
        try {
          const got = await h.manager.get(OA.id, "access_token", never);
          expect(got.value).toBe(first.value);
          expect(got.version).toBe(1);
          served++;
        } catch (err) {
          failures.push(err);
        }
        overdueSeen ||= h.manager.isOverdue(OA.id, "access_token");
      },
    });

    expect(failures).toEqual([]);
    expect(served).toBe(180);
    expect(overdueSeen).toBe(true);
    expect(h.manager.isOverdue(OA.id, "access_token")).toBe(true);

    // The bound. The schedule retries a failed refresh after 1, 2, 4 … s,
    // capped at 60 s (±20%; the harness fixes the jitter at the midpoint),
    // and scheduled refreshes get no inline retries. The breaker (volume 3,
    // 50%) opens on the 3rd fault; after that WeChat is called only by a
    // half-open probe, at most one per resetMs = 30 s after the last opening.
    // So calls ≤ 3 + ⌈1800 s / 30 s⌉ = 63 from the breaker alone; and since
    // every probe needs a scheduled attempt, which comes ≥ 48 s (60 s − 20%)
    // apart once capped, calls ≤ 3 + ⌈1800 s / 48 s⌉ = 41. Conversely every
    // capped attempt (≤ 72 s apart, > 30 s) finds the breaker half-open, so
    // WeChat is probed at least once per 72 s: calls ≥ 3 + ⌊(1800 − 127) / 72⌋ = 26.
    const outageCalls = callTimes.length;
    expect(outageCalls).toBeLessThanOrEqual(3 + Math.ceil(1800 / 30));
    expect(outageCalls).toBeLessThanOrEqual(3 + Math.ceil(1800 / 48));
    expect(outageCalls).toBeGreaterThanOrEqual(26);
    // Exactly, with the jitter at its midpoint: faults at 0, 1, 3 s (open);
    // attempts at 7, 15, 31 s meet the open breaker; probes at 63 s + 60 s·k
    // while ≤ 1800 s, k = 0 … 28: 3 + 29 = 32.
    expect(outageCalls).toBe(32);
    // The first three faults come within the first backoff steps (0, 1, 3 s).
    const t0 = callTimes[0] ?? Number.NaN;
    expect(t0 - outageStart).toBeLessThan(2 * SECOND);
    expect((callTimes[2] ?? Number.NaN) - t0).toBeLessThanOrEqual(4 * SECOND);
    // After that: never two calls within resetMs, never more than the capped backoff apart.
    const gaps = callTimes.slice(3).map((t, i) => t - (callTimes[i + 2] ?? Number.NaN));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(DEFAULT_BREAKER_POLICY.resetMs);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(72 * SECOND);
    expect(h.successes()).toBe(1);
    expect(["open", "half_open"]).toContain(h.breakers.state(OA.id, TOKEN_PATH));

    // WeChat comes back: the next half-open probe succeeds.
    h.emulator.control.clearFaults();
    const before = h.calls();
    await h.advance(2 * MINUTE);
    expect(h.calls() - before).toBe(1);
    expect(h.successes()).toBe(2);
    expect(h.breakers.state(OA.id, TOKEN_PATH)).toBe("closed");
    expect(h.manager.isOverdue(OA.id, "access_token")).toBe(false);
    const fresh = await h.manager.get(OA.id, "access_token", never);
    expect(fresh.version).toBe(2);
    expect(fresh.value).not.toBe(first.value);
    expect(h.emulator.control.checkToken(fresh.value).valid).toBe(true);
    expect(h.manager.refreshesWritten).toBe(2);
    const scrape = await h.observability.metrics.scrape();
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", {
        endpoint: TOKEN_PATH,
        outcome: "http_503",
      }),
    ).toBe(outageCalls);
    expect(sample(scrape, "tokenbroker_breaker_state", { app: OA.id, endpoint: TOKEN_PATH })).toBe(
      0,
    );
    expect(h.alerts("wechat_circuit_open", "firing")).toHaveLength(1);
    expect(h.alerts("wechat_circuit_open", "resolved")).toHaveLength(1);
  });
});

describe("a transient burst of -1 (system busy)", () => {
  it("is absorbed by inline retries on a cold cache: no caller error, 3 calls, breaker closed", async () => {
    const h = await start();
    h.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      appid: OA.appid,
      times: 2,
      action: { type: "errcode", errcode: -1 },
    });
    const t = h.clock.now();
    const token = await h.manager.get(OA.id, "access_token", never);
    await h.settle();
    expect(h.emulator.control.checkToken(token.value).valid).toBe(true);
    expect(h.calls()).toBe(3);
    expect(h.successes()).toBe(1);
    expect(h.clock.now()).toBe(t); // inline retries wait in real time
    expect(h.breakers.state(OA.id, TOKEN_PATH)).toBe("closed");
    expect(h.manager.isOverdue(OA.id, "access_token")).toBe(false);
    const scrape = await h.observability.metrics.scrape();
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", { endpoint: TOKEN_PATH, outcome: "-1" }),
    ).toBe(2);
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", { endpoint: TOKEN_PATH, outcome: "ok" }),
    ).toBe(1);
    expect(
      sample(scrape, "tokenbroker_refresh_total", {
        app: OA.id,
        kind: "access_token",
        outcome: "refreshed",
      }),
    ).toBe(1);
    expect(
      sample(scrape, "tokenbroker_refresh_total", {
        app: OA.id,
        kind: "access_token",
        outcome: "failed",
      }),
    ).toBeUndefined();
    expect(sample(scrape, "tokenbroker_breaker_transitions_total", { to: "open" })).toBeUndefined();
    expect(h.deliveries).toEqual([]);
  });
});

describe("a caller meeting an open breaker", () => {
  // BUG (same root as in quota.test.ts): CircuitOpenError is an UpstreamError
  // without an errcode, so countsAsFault() is true and UpstreamGuard.call
  // "retries" it inline; the breaker stays open for 30 s, so each retry is
  // refused again after a real-time wait (default [200, 600] ms).
  it("fails fast: one circuit_open per refused call, no inline retries", async () => {
    const h = await start();
    h.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      appid: OA.appid,
      action: { type: "http", status: 503 },
    });
    await expect(h.manager.get(OA.id, "access_token", never)).rejects.toThrow("HTTP 503");
    expect(h.calls()).toBe(3); // the call and its two inline retries; the breaker opens
    expect(h.breakers.state(OA.id, TOKEN_PATH)).toBe("open");
    await h.advance(2 * SECOND); // past the 1 s failure hold
    await expect(h.manager.get(OA.id, "access_token", never)).rejects.toThrow("circuit open");
    expect(h.calls()).toBe(3);
    const scrape = await h.observability.metrics.scrape();
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", {
        endpoint: TOKEN_PATH,
        outcome: "circuit_open",
      }),
    ).toBe(1);
  });
});
