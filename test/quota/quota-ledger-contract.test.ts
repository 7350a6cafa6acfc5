import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MemoryQuotaLedger } from "../../src/quota/memory-quota-ledger.js";
import type { QuotaBudgets, QuotaEndpoint, QuotaLedger } from "../../src/quota/quota-ledger.js";
import { RedisQuotaLedger } from "../../src/quota/redis-quota-ledger.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect, freshPrefix, MIDNIGHT, NEXT_MIDNIGHT, NOON } from "./helpers.js";

/**
 * One behaviour suite, run against every QuotaLedger: what the memory ledger
 * decides for a single node, the Redis ledger must decide for replicas.
 * Time is always the caller's `now`, so a test crosses China days at will.
 */

const TOKEN = "/cgi-bin/token";
const STABLE = "/cgi-bin/stable_token";
const TICKET = "/cgi-bin/ticket/getticket";
const FORCE = "force_refresh";
const CLEAR = "clear_quota";
// Web OAuth's endpoints: per-minute limits only, so counted but unmetered.
const SNS_EXCHANGE = "/sns/oauth2/access_token";
const SNS_REFRESH = "/sns/oauth2/refresh_token";
// WeCom's: counted per hour (its limits are per minute and hour, not a China day).
const GETTOKEN = "/cgi-bin/gettoken";
const CORP_TICKET = "/cgi-bin/get_jsapi_ticket";
const AGENT_TICKET = "/cgi-bin/ticket/get";
const WECOM_USAGE = [
  { endpoint: GETTOKEN, used: 0, budget: 60, window: "hour" },
  { endpoint: CORP_TICKET, used: 0, budget: 80, window: "hour" },
  { endpoint: AGENT_TICKET, used: 0, budget: 80, window: "hour" },
];
const HOUR = 3_600_000;

let server: RedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

type Open = (budgets?: QuotaBudgets, clock?: FakeClock) => QuotaLedger;
const factories: Array<[string, Open]> = [
  ["MemoryQuotaLedger", (budgets, clock) => new MemoryQuotaLedger({ budgets, clock })],
  [
    "RedisQuotaLedger",
    (budgets, clock) =>
      new RedisQuotaLedger({ client: connect(server.url), prefix: freshPrefix(), budgets, clock }),
  ],
];

describe.each(factories)("%s", (_name, open) => {
  const opened: QuotaLedger[] = [];
  function ledger(budgets?: QuotaBudgets, clock?: FakeClock): QuotaLedger {
    const l = open(budgets, clock);
    opened.push(l);
    return l;
  }
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((l) => l.close()));
  });

  async function takeMany(l: QuotaLedger, n: number, endpoint: QuotaEndpoint = TOKEN, now = NOON) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await l.take("app", endpoint, now));
    return out;
  }

  it("counts calls up to the budget, then refuses with 'budget' until the next China day", async () => {
    const l = ledger({ defaults: { [TOKEN]: 3 } });
    const allowed = await takeMany(l, 3);
    expect(allowed).toEqual([1, 2, 3].map((used) => ({ allowed: true, used, budget: 3 })));
    const refused = await l.take("app", TOKEN, NOON + 1000);
    expect(refused).toEqual({
      allowed: false,
      reason: "budget",
      used: 3,
      budget: 3,
      retryAt: MIDNIGHT,
    });
    // A refusal is not counted.
    expect(await l.take("app", TOKEN, NOON + 2000)).toMatchObject({ allowed: false, used: 3 });
  });

  it("starts counting again at 16:00:00.000 UTC exactly (00:00 in China)", async () => {
    const l = ledger({ defaults: { [TOKEN]: 2 } });
    await takeMany(l, 2);
    expect(await l.take("app", TOKEN, MIDNIGHT - 1)).toMatchObject({
      allowed: false,
      reason: "budget",
      retryAt: MIDNIGHT,
    });
    expect(await l.take("app", TOKEN, MIDNIGHT)).toEqual({ allowed: true, used: 1, budget: 2 });
    expect(await l.take("app", TOKEN, MIDNIGHT + 1)).toEqual({ allowed: true, used: 2, budget: 2 });
    expect(await l.take("app", TOKEN, MIDNIGHT + 2)).toMatchObject({
      allowed: false,
      retryAt: NEXT_MIDNIGHT,
    });
  });

  it("counts each app and each endpoint on its own", async () => {
    const l = ledger({ defaults: { [TOKEN]: 1, [STABLE]: 1, [TICKET]: 1 } });
    expect(await l.take("app", TOKEN, NOON)).toMatchObject({ allowed: true });
    expect(await l.take("app", TOKEN, NOON)).toMatchObject({ allowed: false });
    expect(await l.take("app", STABLE, NOON)).toMatchObject({ allowed: true, used: 1 });
    expect(await l.take("app", TICKET, NOON)).toMatchObject({ allowed: true, used: 1 });
    expect(await l.take("other", TOKEN, NOON)).toMatchObject({ allowed: true, used: 1 });
  });

  it("after a 45009, refuses the endpoint with 'blocked' until the next China day", async () => {
    const l = ledger();
    await takeMany(l, 2);
    await l.blockUntilReset("app", TOKEN, NOON);
    expect(await l.take("app", TOKEN, MIDNIGHT - 1)).toEqual({
      allowed: false,
      reason: "blocked",
      used: 2,
      budget: 1800,
      retryAt: MIDNIGHT,
    });
    // Other endpoints and other apps carry on.
    expect(await l.take("app", STABLE, NOON)).toMatchObject({ allowed: true });
    expect(await l.take("other", TOKEN, NOON)).toMatchObject({ allowed: true });
    expect(await l.take("app", TOKEN, MIDNIGHT)).toEqual({ allowed: true, used: 1, budget: 1800 });
  });

  it("blocks until the midnight after the 45009, even one received a millisecond before it", async () => {
    const l = ledger();
    await l.blockUntilReset("app", STABLE, MIDNIGHT - 1);
    expect(await l.take("app", STABLE, MIDNIGHT - 1)).toMatchObject({ retryAt: MIDNIGHT });
    expect(await l.take("app", STABLE, MIDNIGHT)).toMatchObject({ allowed: true });
  });

  it("keeps the later block when two replicas saw the day turn differently", async () => {
    const l = ledger();
    await l.blockUntilReset("app", TOKEN, MIDNIGHT + 1);
    await l.blockUntilReset("app", TOKEN, MIDNIGHT - 1);
    expect(await l.take("app", TOKEN, MIDNIGHT + 2)).toMatchObject({
      reason: "blocked",
      retryAt: NEXT_MIDNIGHT,
    });
  });

  it("reset() after a quota clear zeroes today's counters and lifts every block", async () => {
    const l = ledger({ defaults: { [TOKEN]: 2 } });
    await takeMany(l, 2);
    await takeMany(l, 3, STABLE);
    await l.take("app", CLEAR, NOON);
    await l.blockUntilReset("app", TOKEN, NOON);
    await l.blockUntilReset("app", TICKET, NOON);
    await l.reset("app", NOON + 10);
    // The clear itself stays counted: clears are what the clear_quota budget limits.
    expect(
      (await l.usage("app", NOON + 10)).map((u) => [u.endpoint, u.used, u.blockedUntil]),
    ).toEqual([
      [TOKEN, 0, undefined],
      [STABLE, 0, undefined],
      [TICKET, 0, undefined],
      [SNS_EXCHANGE, 0, undefined],
      [SNS_REFRESH, 0, undefined],
      ...[GETTOKEN, CORP_TICKET, AGENT_TICKET].map((e) => [e, 0, undefined]),
      [FORCE, 0, undefined],
      [CLEAR, 1, undefined],
    ]);
    expect(await l.take("app", TOKEN, NOON + 20)).toEqual({ allowed: true, used: 1, budget: 2 });
    expect(await l.take("app", TICKET, NOON + 20)).toMatchObject({ allowed: true });
  });

  it("reset() leaves other apps alone", async () => {
    const l = ledger();
    await l.take("other", TOKEN, NOON);
    await l.blockUntilReset("other", TOKEN, NOON);
    await l.reset("app", NOON);
    expect((await l.usage("other", NOON))[0]).toEqual({
      endpoint: TOKEN,
      used: 1,
      budget: 1800,
      blockedUntil: MIDNIGHT,
    });
  });

  it("allows a force refresh 30 s after the last, not 29.999 s", async () => {
    const l = ledger();
    expect(await l.take("app", FORCE, NOON)).toEqual({ allowed: true, used: 1, budget: 20 });
    expect(await l.take("app", FORCE, NOON + 29_999)).toEqual({
      allowed: false,
      reason: "force_gap",
      used: 1,
      budget: 20,
      retryAt: NOON + 30_000,
    });
    expect(await l.take("app", FORCE, NOON + 30_000)).toEqual({
      allowed: true,
      used: 2,
      budget: 20,
    });
    // The gap runs from the last *allowed* force refresh.
    expect(await l.take("app", FORCE, NOON + 59_999)).toMatchObject({
      reason: "force_gap",
      retryAt: NOON + 60_000,
    });
    // Other apps have gaps of their own.
    expect(await l.take("other", FORCE, NOON + 1)).toMatchObject({ allowed: true });
  });

  it("enforces the force gap across midnight, and resets no gap on reset()", async () => {
    const l = ledger();
    await l.take("app", FORCE, MIDNIGHT - 10_000);
    expect(await l.take("app", FORCE, MIDNIGHT + 19_999)).toMatchObject({
      allowed: false,
      reason: "force_gap",
      used: 0,
      retryAt: MIDNIGHT + 20_000,
    });
    await l.reset("app", MIDNIGHT + 19_999);
    expect(await l.take("app", FORCE, MIDNIGHT + 19_999)).toMatchObject({ reason: "force_gap" });
    expect(await l.take("app", FORCE, MIDNIGHT + 20_000)).toMatchObject({
      allowed: true,
      used: 1,
    });
  });

  it("allows a quota clear 10 minutes after the last, 3 a China day, and a clear does not reset its own count", async () => {
    const l = ledger();
    expect(await l.take("app", CLEAR, NOON)).toEqual({ allowed: true, used: 1, budget: 3 });
    await l.reset("app", NOON);
    expect(await l.take("app", CLEAR, NOON + 599_999)).toEqual({
      allowed: false,
      reason: "clear_gap",
      used: 1,
      budget: 3,
      retryAt: NOON + 600_000,
    });
    // Gaps of force refreshes and clears are separate.
    expect(await l.take("app", FORCE, NOON + 1)).toMatchObject({ allowed: true });
    expect(await l.take("app", CLEAR, NOON + 600_000)).toMatchObject({ allowed: true, used: 2 });
    expect(await l.take("app", CLEAR, NOON + 1_200_000)).toMatchObject({ allowed: true, used: 3 });
    expect(await l.take("app", CLEAR, NOON + 1_800_000)).toEqual({
      allowed: false,
      reason: "budget",
      used: 3,
      budget: 3,
      retryAt: MIDNIGHT,
    });
  });

  it("keeps the reserved share of a budget from reports: 'reserved' for them, while other calls go on", async () => {
    const l = ledger({ defaults: { [TOKEN]: 10 }, scheduledReserve: 0.2 });
    for (let i = 1; i <= 8; i++)
      expect(await l.take("app", TOKEN, NOON, "report")).toEqual({
        allowed: true,
        used: i,
        budget: 8,
      });
    expect(await l.take("app", TOKEN, NOON, "report")).toEqual({
      allowed: false,
      reason: "reserved",
      used: 8,
      budget: 8,
      retryAt: MIDNIGHT,
    });
    expect(await l.take("app", TOKEN, NOON)).toEqual({ allowed: true, used: 9, budget: 10 });
    expect(await l.take("app", TOKEN, NOON)).toEqual({ allowed: true, used: 10, budget: 10 });
    expect(await l.take("app", TOKEN, NOON)).toMatchObject({ allowed: false, reason: "budget" });
    expect(await l.take("app", TOKEN, NOON, "report")).toMatchObject({
      allowed: false,
      reason: "budget",
    });
    // Unmetered stays unmetered for reports too.
    const free = ledger({ defaults: { [TICKET]: null } });
    expect(await free.take("app", TICKET, NOON, "report")).toMatchObject({ allowed: true });
  });

  it("refuses the 21st force refresh of a China day with 'force_daily'", async () => {
    const l = ledger();
    for (let i = 0; i < 20; i++) {
      expect(await l.take("app", FORCE, NOON + i * 30_000)).toMatchObject({
        allowed: true,
        used: i + 1,
      });
    }
    expect(await l.take("app", FORCE, NOON + 20 * 30_000)).toEqual({
      allowed: false,
      reason: "force_daily",
      used: 20,
      budget: 20,
      retryAt: MIDNIGHT,
    });
    // The daily limit wins over the gap: its retryAt is the later one.
    expect(await l.take("app", FORCE, NOON + 19 * 30_000 + 1)).toMatchObject({
      reason: "force_daily",
    });
    expect(await l.take("app", FORCE, MIDNIGHT)).toEqual({ allowed: true, used: 1, budget: 20 });
  });

  it("a 45009 on force refresh blocks it until the next China day", async () => {
    const l = ledger();
    await l.blockUntilReset("app", FORCE, NOON);
    expect(await l.take("app", FORCE, NOON)).toMatchObject({
      allowed: false,
      reason: "blocked",
      retryAt: MIDNIGHT,
    });
  });

  it("usage() reports today's counts, budgets and blocks for every endpoint", async () => {
    const l = ledger({ apps: { app: { [TICKET]: null } } });
    expect(await l.usage("app", NOON)).toEqual([
      { endpoint: TOKEN, used: 0, budget: 1800 },
      { endpoint: STABLE, used: 0, budget: 400_000 },
      { endpoint: TICKET, used: 0, budget: Number.POSITIVE_INFINITY },
      { endpoint: SNS_EXCHANGE, used: 0, budget: Number.POSITIVE_INFINITY },
      { endpoint: SNS_REFRESH, used: 0, budget: Number.POSITIVE_INFINITY },
      ...WECOM_USAGE,
      { endpoint: FORCE, used: 0, budget: 20 },
      { endpoint: CLEAR, used: 0, budget: 3 },
    ]);
    await takeMany(l, 3);
    await takeMany(l, 2, STABLE);
    await l.take("app", FORCE, NOON);
    await l.blockUntilReset("app", STABLE, NOON);
    expect(await l.usage("app", NOON + 1)).toEqual([
      { endpoint: TOKEN, used: 3, budget: 1800 },
      { endpoint: STABLE, used: 2, budget: 400_000, blockedUntil: MIDNIGHT },
      { endpoint: TICKET, used: 0, budget: Number.POSITIVE_INFINITY },
      { endpoint: SNS_EXCHANGE, used: 0, budget: Number.POSITIVE_INFINITY },
      { endpoint: SNS_REFRESH, used: 0, budget: Number.POSITIVE_INFINITY },
      ...WECOM_USAGE,
      { endpoint: FORCE, used: 1, budget: 20 },
      { endpoint: CLEAR, used: 0, budget: 3 },
    ]);
    // The next China day: nothing used, the block over.
    expect((await l.usage("app", MIDNIGHT)).map((u) => u.used + (u.blockedUntil ?? 0))).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // And yesterday is still yesterday.
    expect((await l.usage("app", MIDNIGHT - 1))[0]?.used).toBe(3);
  });

  it("applies per-app budgets over the defaults; null is unmetered", async () => {
    const l = ledger({
      defaults: { [TOKEN]: 1 },
      apps: { mini: { [TOKEN]: 3 }, free: { [TOKEN]: null } },
    });
    expect((await takeMany(l, 2)).map((d) => d.allowed)).toEqual([true, false]);
    const mini = [];
    for (let i = 0; i < 4; i++) mini.push(await l.take("mini", TOKEN, NOON));
    expect(mini.map((d) => d.allowed)).toEqual([true, true, true, false]);
    for (let i = 1; i <= 10; i++) {
      expect(await l.take("free", TOKEN, NOON)).toEqual({
        allowed: true,
        used: i,
        budget: Number.POSITIVE_INFINITY,
      });
    }
  });

  it("a budget of 0 refuses every call; an unmetered force refresh still keeps the gap", async () => {
    const l = ledger({ defaults: { [TICKET]: 0, [FORCE]: null } });
    expect(await l.take("app", TICKET, NOON)).toMatchObject({ allowed: false, reason: "budget" });
    for (let i = 0; i < 25; i++)
      expect(await l.take("app", FORCE, NOON + i * 30_000)).toMatchObject({ allowed: true });
    expect(await l.take("app", FORCE, NOON + 24 * 30_000 + 1)).toMatchObject({
      reason: "force_gap",
    });
  });

  it("takes `now` from its clock when the caller leaves it out", async () => {
    const clock = new FakeClock(NOON);
    const l = ledger({ defaults: { [TOKEN]: 1 } }, clock) as MemoryQuotaLedger | RedisQuotaLedger;
    expect(await l.take("app", TOKEN)).toMatchObject({ allowed: true });
    expect(await l.take("app", TOKEN)).toMatchObject({ allowed: false, retryAt: MIDNIGHT });
    clock.set(MIDNIGHT);
    expect(await l.take("app", TOKEN)).toMatchObject({ allowed: true, used: 1 });
  });

  it("rejects an app id that is not the broker's id pattern, and a time that is not epoch ms", async () => {
    const l = ledger();
    await expect(l.take("a}:b", TOKEN, NOON)).rejects.toThrow(TypeError);
    await expect(l.usage("", NOON)).rejects.toThrow(TypeError);
    await expect(l.take("app", TOKEN, Number.NaN)).rejects.toThrow(TypeError);
  });

  describe("WeCom's windows: per hour, per app and per corp", () => {
    // An hour's window: [HOUR_START, HOUR_START + HOUR).
    const HOUR_START = Math.floor(NOON / HOUR) * HOUR;

    it("counts per hour, not per China day: the budget is back when the next hour starts", async () => {
      const l = ledger({ defaults: { [GETTOKEN]: 3 } });
      for (let i = 1; i <= 3; i++)
        expect(await l.take("hr", GETTOKEN, NOON + i)).toEqual({
          allowed: true,
          used: i,
          budget: 3,
          window: "hour",
        });
      expect(await l.take("hr", GETTOKEN, HOUR_START + HOUR - 1)).toEqual({
        allowed: false,
        reason: "budget",
        used: 3,
        budget: 3,
        retryAt: HOUR_START + HOUR,
        window: "hour",
      });
      expect(await l.take("hr", GETTOKEN, HOUR_START + HOUR)).toMatchObject({
        allowed: true,
        used: 1,
      });
    });

    it("holds WeCom's ticket limits: 100 an hour per app and 400 per corp, corp and app tickets together (budgets 80 and 320)", async () => {
      const l = ledger();
      // One app: its corp and agent tickets share the app's 80.
      const one = [];
      for (let i = 0; i < 50; i++) one.push(await l.take("a0", CORP_TICKET, NOON, "any", "ww1"));
      for (let i = 0; i < 50; i++) one.push(await l.take("a0", AGENT_TICKET, NOON, "any", "ww1"));
      expect(one.filter((d) => d.allowed)).toHaveLength(80);
      expect(one.at(-1)).toMatchObject({
        reason: "budget",
        budget: 80,
        retryAt: HOUR_START + HOUR,
      });
      expect(one.at(-1)?.group).toBeUndefined();
      // Four more apps of the corp: the corp's 320 runs out before their own 80 each.
      const allowed: Record<string, number> = {};
      let refusedByCorp = 0;
      for (const app of ["a1", "a2", "a3", "a4"]) {
        for (let i = 0; i < 80; i++) {
          const d = await l.take(app, i % 2 ? AGENT_TICKET : CORP_TICKET, NOON, "any", "ww1");
          if (d.allowed) allowed[app] = (allowed[app] ?? 0) + 1;
          else if (d.group === "ww1") refusedByCorp++;
        }
      }
      const total = 80 + Object.values(allowed).reduce((a, b) => a + b, 0);
      expect(total).toBe(320);
      expect(refusedByCorp).toBe(4 * 80 - 240);
      // A refusal by the corp gave the app's count back: a4 has used what it was allowed.
      const usage = await l.usage("a4", NOON, {
        endpoints: [CORP_TICKET, AGENT_TICKET],
        group: "ww1",
      });
      expect(usage).toEqual([
        {
          endpoint: CORP_TICKET,
          used: allowed.a4 ?? 0,
          budget: 80,
          window: "hour",
          group: { id: "ww1", used: 320, budget: 320 },
        },
        {
          endpoint: AGENT_TICKET,
          used: allowed.a4 ?? 0,
          budget: 80,
          window: "hour",
          group: { id: "ww1", used: 320, budget: 320 },
        },
      ]);
      // Another corp is not touched, and the next hour is fresh.
      expect(await l.take("b0", CORP_TICKET, NOON, "any", "ww2")).toMatchObject({
        allowed: true,
        used: 1,
      });
      expect(await l.take("a1", CORP_TICKET, HOUR_START + HOUR, "any", "ww1")).toMatchObject({
        allowed: true,
        used: 1,
      });
    });

    it("takes configured corp budgets, per corp over the default", async () => {
      const l = ledger({
        groupDefaults: { [GETTOKEN]: 2 },
        groups: { big: { [GETTOKEN]: 3 } },
      });
      const run = async (corp: string) => {
        const out = [];
        for (const app of ["x", "y", "z", "w"])
          out.push((await l.take(`${corp}-${app}`, GETTOKEN, NOON, "any", corp)).allowed);
        return out;
      };
      expect(await run("small")).toEqual([true, true, false, false]);
      expect(await run("big")).toEqual([true, true, true, false]);
    });

    it("blocks a corp for a minute on WeCom's 45009, and for an hour when it is hit again within the hour", async () => {
      const l = ledger();
      await l.blockUntilReset("a1", GETTOKEN, NOON, "ww1");
      // Every app of the corp is blocked, for a minute.
      expect(await l.take("a2", GETTOKEN, NOON + 1, "any", "ww1")).toMatchObject({
        allowed: false,
        reason: "blocked",
        retryAt: NOON + 60_000,
        group: "ww1",
      });
      // A second 45009 while the block runs (another replica) keeps it as is.
      await l.blockUntilReset("a2", GETTOKEN, NOON + 2, "ww1");
      expect((await l.take("a2", GETTOKEN, NOON + 3, "any", "ww1")).retryAt).toBe(NOON + 60_000);
      expect(await l.take("a1", GETTOKEN, NOON + 60_000, "any", "ww1")).toMatchObject({
        allowed: true,
      });
      // Hit again 10 minutes later: the hour's limit, an hour's block.
      const again = NOON + 10 * 60_000;
      await l.blockUntilReset("a1", GETTOKEN, again, "ww1");
      expect(await l.take("a1", GETTOKEN, again + 59 * 60_000, "any", "ww1")).toMatchObject({
        reason: "blocked",
        retryAt: again + HOUR,
      });
      const [usage] = await l.usage("a1", again + 1, { endpoints: [GETTOKEN], group: "ww1" });
      expect(usage?.blockedUntil).toBe(again + HOUR);
      // Two hours later with no 45009 in between: a minute again.
      const later = again + 3 * HOUR;
      await l.blockUntilReset("a1", GETTOKEN, later, "ww1");
      expect((await l.take("a1", GETTOKEN, later, "any", "ww1")).retryAt).toBe(later + 60_000);
    });

    it("blocks the app alone when it has no group", async () => {
      const l = ledger();
      await l.blockUntilReset("solo", GETTOKEN, NOON);
      expect(await l.take("solo", GETTOKEN, NOON + 1)).toMatchObject({
        reason: "blocked",
        retryAt: NOON + 60_000,
      });
      expect(await l.take("other", GETTOKEN, NOON + 1)).toMatchObject({ allowed: true });
    });

    it("refuses a corp id that cannot go into a key", async () => {
      const l = ledger();
      await expect(l.take("hr", GETTOKEN, NOON, "any", "ww}:x")).rejects.toThrow(TypeError);
    });
  });

  it("refuses calls once closed", async () => {
    const l = ledger();
    await l.close();
    await expect(l.take("app", TOKEN, NOON)).rejects.toThrow(/closed/);
  });
});
