import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { nextChinaDay } from "../../src/quota/index.js";
import { QuotaExhaustedError } from "../../src/shared/errors.js";
import { toConnectError } from "../../src/shared/to-connect-error.js";
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

describe("WeChat's daily quota used up (45009) at a scheduled refresh", () => {
  it("stops calling /cgi-bin/token until 00:00 China time, serves the cached token meanwhile, and alerts once", async () => {
    // 14:10 UTC = 22:10 China time. The token (7200 s) lives until 16:10 UTC;
    // with a 30 min margin its refresh is due around 15:35, before the China
    // day ends at 16:00 UTC, and it is still servable after midnight.
    const h = await start({
      startMs: Date.UTC(2026, 0, 1, 14, 10, 0),
      policy: { marginMs: 30 * MINUTE },
    });
    const midnight = nextChinaDay(h.clock.now());
    expect(midnight).toBe(Date.UTC(2026, 0, 1, 16, 0, 0));
    const first = await h.manager.get(OA.id, "access_token", never);
    expect(first.expiresAt).toBe(Date.UTC(2026, 0, 1, 16, 10, 0));
    // WeChat allows this account one /cgi-bin/token a day: today's is used.
    h.emulator.control.setDailyLimit(OA.appid, TOKEN_PATH, 1);
    const refreshAt = h.manager.nextRefreshAt(OA.id, "access_token") ?? Number.NaN;
    expect(refreshAt).toBeLessThan(midnight - 10 * MINUTE);

    await h.advanceTo(refreshAt - SECOND, { stepMs: MINUTE });
    expect(h.calls()).toBe(1);

    // Step 10 s at a time up to 16:10, a caller every minute; note when the
    // call count moves.
    const moves: Array<{ at: number; calls: number }> = [];
    let last = h.calls();
    let served = 0;
    let overdueSeen = false;
    let steps = 0;
    await h.advanceTo(first.expiresAt - MINUTE, {
      stepMs: 10 * SECOND,
      async onStep(now) {
        if (h.calls() !== last) {
          last = h.calls();
          moves.push({ at: now, calls: last });
        }
        if (++steps % 6 !== 0) return;
        const got = await h.manager.get(OA.id, "access_token", never);
        if (now < midnight) {
          expect(got.value).toBe(first.value);
          overdueSeen ||= h.manager.isOverdue(OA.id, "access_token");
        }
        served++;
      },
    });

    // One call answered 45009 at the scheduled refresh; then nothing until
    // 00:00 China time; then one successful call within one slow retry
    // (slowRetryMs = 5 min) of midnight.
    expect(moves).toHaveLength(2);
    const [blocked, resumed] = moves;
    expect(blocked?.calls).toBe(2);
    expect(blocked?.at).toBeLessThanOrEqual(refreshAt + 10 * SECOND);
    expect(resumed?.calls).toBe(3);
    expect(resumed?.at).toBeGreaterThanOrEqual(midnight);
    expect(resumed?.at).toBeLessThanOrEqual(midnight + 5 * MINUTE + 10 * SECOND);
    const counters = h.emulator.control.counters()[TOKEN_PATH]?.[OA.appid];
    expect(counters?.errors).toEqual({ "45009": 1 });
    expect(counters?.successes).toBe(2);

    expect(served).toBeGreaterThanOrEqual(30);
    expect(overdueSeen).toBe(true);
    const now = await h.manager.get(OA.id, "access_token", never);
    expect(now.version).toBe(2);
    expect(now.value).not.toBe(first.value);
    expect(h.manager.isOverdue(OA.id, "access_token")).toBe(false);

    // Several scheduled attempts failed (the 45009, then local refusals every
    // 5 min): one firing, and one resolved after the successful refresh.
    const scrape = await h.observability.metrics.scrape();
    const refused =
      sample(scrape, "tokenbroker_upstream_calls_total", {
        endpoint: TOKEN_PATH,
        outcome: "refused_locally",
      }) ?? 0;
    // A scheduled attempt every 5 min from the 45009 while before midnight,
    // each refused by the ledger's block: ⌊(16:00 − 15:34:12) / 5 min⌋ = 5;
    // the next one, the first after midnight, reached WeChat.
    const slowRetries = Math.floor((midnight - (blocked?.at ?? 0)) / (5 * MINUTE));
    expect(slowRetries).toBe(5);
    expect(refused).toBe(slowRetries);
    expect(resumed?.at).toBe((blocked?.at ?? 0) + (slowRetries + 1) * 5 * MINUTE);
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", {
        endpoint: TOKEN_PATH,
        outcome: "45009",
      }),
    ).toBe(1);
    const firing = h.alerts("wechat_quota_exhausted", "firing");
    expect(firing).toHaveLength(1);
    expect(firing[0]?.details).toEqual({ errcode: 45009, kind: "access_token" });
    expect(h.alerts("wechat_quota_exhausted", "resolved")).toHaveLength(1);
    expect(h.breakers.state(OA.id, TOKEN_PATH)).toBe("closed");
  });
});

describe("the broker's own daily budget", () => {
  it("refuses a 4th /cgi-bin/token locally, keeps serving the valid token, then fails with RESOURCE_EXHAUSTED", async () => {
    // No reserve: the reports here may spend the whole budget.
    const h = await start({ budgets: { "/cgi-bin/token": 3 }, scheduledReserve: 0 });
    const v1 = await h.manager.get(OA.id, "access_token", never);
    const r2 = await h.manager.invalidate(OA.id, "access_token", v1.value, 40001, never);
    const r3 = await h.manager.invalidate(OA.id, "access_token", r2.credential.value, 40001, never);
    expect([r2.outcome, r3.outcome]).toEqual(["refreshed", "refreshed"]);
    expect(r3.credential.version).toBe(3);
    expect(h.calls()).toBe(3);

    // The 4th refresh would exceed the budget: refused without calling WeChat.
    const fourth = await h.manager
      .invalidate(OA.id, "access_token", r3.credential.value, 40001, never)
      .catch((err: unknown) => err);
    await h.settle();
    expect(fourth).toBeInstanceOf(QuotaExhaustedError);
    expect((fourth as Error).message).toContain("daily budget of 3 calls");
    expect(h.calls()).toBe(3);

    // Callers still get the current token (WeChat still accepts it).
    const v3 = r3.credential;
    expect(h.emulator.control.checkToken(v3.value).valid).toBe(true);
    expect((await h.manager.get(OA.id, "access_token", never)).value).toBe(v3.value);

    // Until it expires; the scheduled refresh is refused too (same China day:
    // it starts at 04:00 UTC, the token ends at 06:00 UTC, the day at 16:00).
    expect(nextChinaDay(h.clock.now())).toBeGreaterThan(v3.expiresAt);
    await h.advanceTo(v3.expiresAt - 10 * SECOND, { stepMs: 10 * SECOND });
    expect(h.calls()).toBe(3);
    // Serve-stale: past the 30 s safety margin, but still valid.
    expect((await h.manager.get(OA.id, "access_token", never)).value).toBe(v3.value);
    expect(h.manager.isOverdue(OA.id, "access_token")).toBe(true);

    await h.advanceTo(v3.expiresAt + SECOND, { stepMs: 10 * SECOND });
    const err = await h.manager.get(OA.id, "access_token", never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaExhaustedError);
    expect(toConnectError(err).code).toBe(Code.ResourceExhausted);
    expect(h.calls()).toBe(3);
    expect(h.emulator.control.counters()[TOKEN_PATH]?.[OA.appid]?.successes).toBe(3);
    const usage = await h.ledger.usage(OA.id, h.clock.now());
    expect(usage.find((u) => u.endpoint === TOKEN_PATH)).toMatchObject({ used: 3, budget: 3 });
  });

  // BUG (src/upstream/upstream-guard.ts `call` + countsAsFault in
  // upstream-breakers.ts): a local refusal is an UpstreamError without an
  // errcode, which countsAsFault() treats as a WeChat fault, so a caller's
  // refused call is "retried" inline (each retry re-asks the ledger, and with
  // the default delays [200, 600] makes the caller wait ~0.8 s for a refusal
  // that cannot change). Expected: one refusal observed per refused call.
  it("does not retry a local budget refusal inline (one refused_locally per refused call)", async () => {
    const h = await start({ budgets: { "/cgi-bin/token": 1 } });
    const v1 = await h.manager.get(OA.id, "access_token", never);
    await h.manager.invalidate(OA.id, "access_token", v1.value, 40001, never).catch(() => {});
    const scrape = await h.observability.metrics.scrape();
    expect(h.calls()).toBe(1);
    expect(
      sample(scrape, "tokenbroker_upstream_calls_total", {
        endpoint: TOKEN_PATH,
        outcome: "refused_locally",
      }),
    ).toBe(1);
  });
});
