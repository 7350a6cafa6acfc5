import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Lease } from "../../../src/core/ports/refresh-lock.js";
import { systemClock } from "../../../src/shared/clock.js";
import { silentLogger } from "../../../src/shared/logger.js";
import type { RedisClient } from "../../../src/store/redis/connection.js";
import {
  LockLostError,
  LockStoreUnreachableError,
} from "../../../src/store/redis/coordination-errors.js";
import type { RedisKeys } from "../../../src/store/redis/keys.js";
import {
  RedisRefreshLock,
  type RedisRefreshLockOptions,
} from "../../../src/store/redis/redis-refresh-lock.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { captureLogger, connect, deferred, delay, freshKeys, until } from "./helpers.js";

const key = { appId: "app1", kind: "access_token" } as const;

describe("RedisRefreshLock across two replicas", () => {
  let server: RedisServer;
  const clients: RedisClient[] = [];
  let keys: RedisKeys;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(() => {
    keys = freshKeys();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  /** A replica: its own connection and lock, on the test's keys. */
  function replica(o: Partial<RedisRefreshLockOptions> = {}, url = server.url): RedisRefreshLock {
    const client = connect(url, `replica-${clients.length}`);
    clients.push(client);
    return new RedisRefreshLock({ client, keys, clock: systemClock, logger: silentLogger(), ...o });
  }

  function admin(url = server.url): RedisClient {
    const c = connect(url, "admin");
    clients.push(c);
    return c;
  }

  it("grants the lock to exactly one of two concurrent callers, every time", async () => {
    const [a, b] = [replica(), replica()];
    for (let round = 0; round < 20; round++) {
      const k = { appId: `app-${round}`, kind: "jsapi_ticket" } as const;
      const gate = deferred();
      let settled = 0;
      const attempt = (r: RedisRefreshLock) =>
        r
          .withLock(k, async () => {
            await gate.promise;
            return round;
          })
          .finally(() => settled++);
      const both = Promise.all([attempt(a), attempt(b)]);
      // The loser answers at once, while the winner is still inside fn.
      await until(() => settled === 1, 2000, "the loser's answer");
      gate.resolve();
      const results = await both;
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
      expect(results.find((r) => r.acquired)).toEqual({ acquired: true, value: round });
    }
  });

  it("hands out strictly increasing fences across holders", async () => {
    const [a, b] = [replica(), replica()];
    const seen: number[] = [];
    const take = (lease: Lease) => {
      seen.push(lease.fence);
      return delay(2);
    };
    for (let i = 0; i < 10; i++) {
      expect((await (i % 2 ? a : b).withLock(key, async (l) => take(l))).acquired).toBe(true);
    }
    // And under contention: only winners record, in the order they held the lock.
    await Promise.all(
      [a, b].map(async (r) => {
        for (let i = 0; i < 30; i++) await r.withLock(key, async (l) => take(l));
      }),
    );
    expect(seen.length).toBeGreaterThan(10);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] ?? 0);
  });

  it("keeps the lock for a holder that runs through several TTLs, then lets the other in", async () => {
    const ttlMs = 600;
    const [a, b] = [replica({ ttlMs }), replica({ ttlMs })];
    let signal: AbortSignal | undefined;
    const started = deferred();
    const holding = a.withLock(key, async (lease) => {
      signal = lease.signal;
      started.resolve();
      await delay(2000);
      return lease.signal.aborted;
    });
    await started.promise;
    const attempts: boolean[] = [];
    while (attempts.length < 15) {
      attempts.push((await b.withLock(key, async () => "stolen")).acquired);
      await delay(100);
    }
    expect(attempts.every((got) => !got)).toBe(true);
    expect(await holding).toEqual({ acquired: true, value: false });
    expect(signal?.aborted).toBe(false);
    // Released at once, not left to expire.
    expect(await b.withLock(key, async () => "mine")).toEqual({ acquired: true, value: "mine" });
  });

  it("tells a caller that finds the lock taken how long the holder's lease can still last", async () => {
    const ttlMs = 3000;
    const [a, b] = [replica({ ttlMs }), replica({ ttlMs })];
    const started = deferred();
    const release = deferred();
    const holding = a.withLock(key, async () => {
      started.resolve();
      await release.promise;
    });
    await started.promise;
    await delay(500);
    const refused = await b.withLock(key, async () => "stolen");
    expect(refused.acquired).toBe(false);
    // Not a whole lease: what is left of it, so a waiter can take over a dead holder's lock then.
    if (!refused.acquired) {
      expect(refused.leaseRemainingMs).toBeGreaterThan(0);
      expect(refused.leaseRemainingMs).toBeLessThanOrEqual(ttlMs - 400);
    }
    release.resolve();
    await holding;
  });

  it("aborts the lease's signal when the lock is taken away mid-run", async () => {
    const ttlMs = 600;
    const log = captureLogger();
    const a = replica({ ttlMs, logger: log.logger });
    const redis = admin();
    const started = Date.now();
    const result = await a.withLock(key, async (lease) => {
      await redis.del(keys.lock(key));
      await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
      return { reason: lease.signal.reason as unknown, after: Date.now() - started };
    });
    expect(result.acquired).toBe(true);
    if (!result.acquired) return;
    expect(result.value.reason).toBeInstanceOf(LockLostError);
    expect(String((result.value.reason as Error).message)).toMatch(
      /lost the refresh lock of the access_token of app 'app1'.*must not write/,
    );
    // The first extension (at TTL/3) finds the lock gone.
    expect(result.value.after).toBeLessThan(ttlMs);
    expect(log.lines().some((l) => l.msg === "refresh lock lost")).toBe(true);
  });

  it("extends on the injected clock every TTL/3, and aborts once an extension fails", async () => {
    const clock = new FakeClock();
    const a = replica({ clock, ttlMs: 30_000 });
    const redis = admin();
    const started = deferred();
    const done = deferred();
    let signal: AbortSignal | undefined;
    const holding = a.withLock(key, async (lease) => {
      signal = lease.signal;
      started.resolve();
      await done.promise;
    });
    await started.promise;
    expect(clock.pending).toBe(2); // the next extension and the expiry watchdog
    await clock.advance(10_000);
    await until(() => clock.pending === 2, 2000, "the first extension");
    expect(signal?.aborted).toBe(false);
    await redis.del(keys.lock(key));
    await clock.advance(9_999);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    await until(() => signal?.aborted === true, 2000, "the abort");
    expect(signal?.reason).toBeInstanceOf(LockLostError);
    expect(clock.pending).toBe(0);
    done.resolve();
    expect(await holding).toEqual({ acquired: true, value: undefined });
  });

  it("refuses new leases once closed", async () => {
    const a = replica();
    await a.close();
    await expect(a.withLock(key, async () => 1)).rejects.toThrow(/closed/);
  });

  it("lets a caller's error through as is and releases the lock", async () => {
    const [a, b] = [replica(), replica()];
    const boom = new Error("fetch failed");
    await expect(
      a.withLock(key, async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await b.withLock(key, async () => 1)).toEqual({ acquired: true, value: 1 });
  });

  it("refuses a TTL outside 100 ms to 2 minutes", () => {
    expect(() => replica({ ttlMs: 50 })).toThrow(/ttlMs/);
    expect(() => replica({ ttlMs: 120_001 })).toThrow(/ttlMs/);
  });

  describe("when Redis goes away", () => {
    let lone: RedisServer;
    beforeAll(async () => {
      lone = await startRedisServer();
    });
    afterAll(async () => {
      await lone.stop();
    });

    it("aborts a holder's signal, and new callers get an 'unreachable' error, not contention", async () => {
      const ttlMs = 600;
      const log = captureLogger();
      const a = replica({ ttlMs, logger: log.logger }, lone.url);
      const started = deferred();
      const holding = a.withLock(key, async (lease) => {
        started.resolve();
        await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
        return { reason: lease.signal.reason as unknown, abortedAt: Date.now() };
      });
      await started.promise;
      await lone.stop("SIGKILL");
      const stoppedAt = Date.now();
      const held = await holding;
      expect(held).toMatchObject({ acquired: true, value: { reason: expect.any(LockLostError) } });
      // Within the lease: an extension fails, or the lease runs out first.
      if (held.acquired) expect(held.value.abortedAt - stoppedAt).toBeLessThan(ttlMs);
      // The failed release is logged, not thrown over fn's result.
      expect(log.lines().some((l) => String(l.msg).includes("release"))).toBe(true);

      const b = replica({}, lone.url);
      const called: string[] = [];
      const attempt = b.withLock(key, async () => {
        called.push("fn");
      });
      await expect(attempt).rejects.toBeInstanceOf(LockStoreUnreachableError);
      await expect(attempt).rejects.toThrow(/lock store \(Redis\) is unreachable/);
      expect(called).toEqual([]);

      await lone.start();
      await until(() => clients.every((c) => c.status === "ready"), 5000, "reconnect");
      expect(await b.withLock(key, async () => "back")).toEqual({ acquired: true, value: "back" });
    });
  });
});
