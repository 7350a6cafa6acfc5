import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisQuotaLedger } from "../../src/quota/redis-quota-ledger.js";
import { StoreUnavailableError } from "../../src/shared/errors.js";
import type { RedisClient } from "../../src/store/redis/connection.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect, freshPrefix, MIDNIGHT, NOON } from "./helpers.js";

const TOKEN = "/cgi-bin/token";

let server: RedisServer;
let admin: RedisClient;
beforeAll(async () => {
  server = await startRedisServer();
  admin = connect(server.url, "quota-admin");
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

const opened: RedisQuotaLedger[] = [];
function replica(prefix: string, budget = 100, client = connect(server.url)): RedisQuotaLedger {
  const l = new RedisQuotaLedger({ client, prefix, budgets: { defaults: { [TOKEN]: budget } } });
  opened.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

describe("RedisQuotaLedger on one Redis shared by replicas", () => {
  it("3 replicas taking 500 times at once against a budget of 100 allow exactly 100", async () => {
    const prefix = freshPrefix();
    const replicas = [replica(prefix), replica(prefix), replica(prefix)];
    const decisions = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        (replicas[i % 3] as RedisQuotaLedger).take("app", TOKEN, NOON + i),
      ),
    );
    const allowed = decisions.filter((d) => d.allowed);
    expect(allowed).toHaveLength(100);
    // Each allowed call got its own count: 1..100, none twice.
    expect(allowed.map((d) => d.used).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    expect(decisions.filter((d) => !d.allowed).every((d) => d.reason === "budget")).toBe(true);
    for (const r of replicas) expect((await r.usage("app", NOON + 500))[0]?.used).toBe(100);
  });

  it("lets one force refresh through when replicas race inside the 30 s gap", async () => {
    const prefix = freshPrefix();
    const replicas = [replica(prefix), replica(prefix), replica(prefix)];
    const decisions = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (replicas[i % 3] as RedisQuotaLedger).take("app", "force_refresh", NOON + i),
      ),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(1);
    expect(decisions.filter((d) => d.reason === "force_gap")).toHaveLength(29);
  });

  it("keeps every key under the prefix, tagged per app, with a TTL and no secret", async () => {
    const prefix = freshPrefix();
    const secret = "0123456789abcdef0123456789abcdef";
    const l = replica(prefix);
    for (const app of ["wx-app.1", "other_app"]) {
      for (const endpoint of [
        TOKEN,
        "/cgi-bin/stable_token",
        "/cgi-bin/ticket/getticket",
        "force_refresh",
      ] as const) {
        await l.take(app, endpoint, NOON);
        await l.blockUntilReset(app, endpoint, NOON);
      }
    }
    const keys = (await admin.keys(`${prefix}*`)).sort();
    expect(keys).toHaveLength(2 * (4 + 4 + 1));
    const escaped = prefix.replace(/[-.]/g, "\\$&");
    const shape = new RegExp(
      `^${escaped}:\\{quota:(wx-app\\.1|other_app)\\}:(count:2026-01-01:(token|stable_token|getticket|force_refresh)|block:(token|stable_token|getticket|force_refresh)|force:last)$`,
    );
    for (const key of keys) {
      expect(key).toMatch(shape);
      expect(key).not.toContain(secret);
      // Every value is a number (a count or epoch ms); no key lives forever.
      expect(await admin.get(key)).toMatch(/^\d+$/);
      const ttl = await admin.pttl(key);
      expect(ttl).toBeGreaterThan(0);
    }
    // Counters and blocks last until a little (1 h) after the China day ends.
    const keep = MIDNIGHT - NOON + 3_600_000;
    const countTtl = await admin.pttl(`${prefix}:{quota:other_app}:count:2026-01-01:token`);
    expect(countTtl).toBeLessThanOrEqual(keep);
    expect(countTtl).toBeGreaterThan(keep - 60_000);
    // Nothing is written outside the prefix.
    const everywhere = await admin.keys("*quota:wx-app.1*");
    expect(everywhere.sort()).toEqual(keys.filter((k) => k.includes("{quota:wx-app.1}")));
  });

  it("does not close a client it was told it shares", async () => {
    const client = connect(server.url);
    const l = new RedisQuotaLedger({ client, prefix: freshPrefix(), ownsClient: false });
    await l.take("app", TOKEN, NOON);
    await l.close();
    expect(await client.ping()).toBe("PONG");
    client.disconnect();
  });
});

describe("RedisQuotaLedger when Redis is unreachable", () => {
  let down: RedisServer;
  beforeAll(async () => {
    down = await startRedisServer();
  });
  afterAll(async () => {
    await down?.stop();
  });

  it("rejects with StoreUnavailableError while Redis is stopped, and works again after", async () => {
    const l = replica(freshPrefix(), 100, connect(down.url, "quota-outage", 500));
    expect(await l.take("app", TOKEN, NOON)).toMatchObject({ allowed: true, used: 1 });
    await down.stop("SIGTERM");
    await expect(l.take("app", TOKEN, NOON)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(l.usage("app", NOON)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(l.blockUntilReset("app", TOKEN, NOON)).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await expect(l.reset("app", NOON)).rejects.toBeInstanceOf(StoreUnavailableError);

    await down.start();
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await l.usage("app", NOON);
        break;
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // The restarted server kept nothing. (A take that timed out during the
    // outage may still have reached it once it was back: a rejected take can
    // have been counted, which errs on the safe side.)
    const after = await l.take("app", TOKEN, NOON);
    expect(after.allowed).toBe(true);
    expect(after.used).toBeLessThanOrEqual(2);
  });
});
