import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Clock } from "../../../src/shared/clock.js";
import { silentLogger } from "../../../src/shared/logger.js";
import type { RedisClient } from "../../../src/store/redis/connection.js";
import type { RedisKeys } from "../../../src/store/redis/keys.js";
import {
  RedisDueQueue,
  type RedisDueQueueOptions,
} from "../../../src/store/redis/redis-due-queue.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { captureLogger, connect, freshKeys, until } from "./helpers.js";

const HOUR = 3_600_000;

describe("RedisDueQueue shared by replicas", () => {
  let server: RedisServer;
  let admin: RedisClient;
  let clock: FakeClock;
  let keys: RedisKeys;
  let clients: RedisClient[] = [];
  let queues: RedisDueQueue[] = [];
  /** Queues whose poll loop is running (each keeps one timer pending between polls). */
  let polling = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    admin = connect(server.url, "admin");
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });
  beforeEach(() => {
    clock = new FakeClock();
    keys = freshKeys();
    polling = 0;
  });
  afterEach(async () => {
    await Promise.all(queues.map((q) => q.close()));
    for (const c of clients) c.disconnect();
    queues = [];
    clients = [];
  });

  function replica(o: Partial<RedisDueQueueOptions> = {}, url = server.url): RedisDueQueue {
    const client = connect(url, `replica-${clients.length}`);
    clients.push(client);
    const q = new RedisDueQueue({ client, keys, clock, logger: silentLogger(), ...o });
    queues.push(q);
    return q;
  }

  function start(q: RedisDueQueue, handler: (id: string) => void): void {
    q.start(handler);
    polling++;
  }

  async function stop(q: RedisDueQueue): Promise<void> {
    await q.close();
    polling--;
  }

  /** Moves the fake time in steps, letting every poll's round trip to Redis finish. */
  async function advance(ms: number, step = 250): Promise<void> {
    for (let done = 0; done < ms; done += step) {
      await clock.advance(Math.min(step, ms - done));
      await until(() => clock.pending === polling, 5000, "polls to finish");
    }
  }

  it("hands each of 300 due ids to exactly one of three replicas", async () => {
    const [a, b, c] = [replica(), replica(), replica()];
    const t0 = clock.now();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        [a, b, c][i % 3]?.plan(`app${i}/access_token`, t0 + 500 + i * 97),
      ),
    );
    const got = new Map<string, string[]>();
    const handled: Promise<void>[] = [];
    for (const [name, q] of [
      ["a", a],
      ["b", b],
      ["c", c],
    ] as const) {
      start(q, (id) => {
        got.set(id, [...(got.get(id) ?? []), name]);
        // What RefreshSchedule does: plan the next run, then release.
        handled.push(q.plan(id, clock.now() + HOUR).then(() => q.release(id)));
      });
    }
    await advance(31_000);
    expect(got.size).toBe(300);
    expect([...got.values()].every((who) => who.length === 1)).toBe(true);
    const perReplica = new Set([...got.values()].map(([who]) => who));
    expect(perReplica.size).toBeGreaterThan(1);
    await Promise.all(handled);
    expect(await admin.zcard(keys.scheduleClaims)).toBe(0);
    expect(await admin.zcount(keys.scheduleDue, clock.now() + HOUR - 31_000, "+inf")).toBe(300);
  });

  it("gives an id to another replica once the claim of a replica that crashed expires", async () => {
    const claimTtlMs = 10_000;
    const crashed = replica({ claimTtlMs });
    const survivor = replica({ claimTtlMs });
    await crashed.plan("x/access_token", clock.now() + 500);
    const taken: string[] = [];
    start(crashed, (id) => taken.push(`crashed:${id}`)); // never releases
    await advance(2000);
    expect(taken).toEqual(["crashed:x/access_token"]);
    await stop(crashed);
    start(survivor, (id) => taken.push(`survivor:${id}`));
    await advance(claimTtlMs - 2000);
    expect(taken).toHaveLength(1);
    await advance(3000);
    expect(taken).toEqual(["crashed:x/access_token", "survivor:x/access_token"]);
  });

  it("does not give an id planned again but not yet released to another replica", async () => {
    const [a, b] = [replica(), replica()];
    const id = "y/access_token";
    await a.plan(id, clock.now() + 500);
    const taken: Array<[string, RedisDueQueue]> = [];
    for (const [name, q] of [
      ["a", a],
      ["b", b],
    ] as const) {
      start(q, (got) => {
        taken.push([name, q]);
        void q.plan(got, clock.now()); // due again at once, still claimed
      });
    }
    await advance(5000);
    expect(taken).toHaveLength(1);
    await taken[0]?.[1].release(id);
    await advance(1500);
    expect(taken).toHaveLength(2);
  });

  it("planIfAbsent keeps an existing due time (and reports it); plan moves it", async () => {
    const [a, b] = [replica(), replica()];
    const id = "z/jsapi_ticket";
    const t = clock.now();
    await a.planIfAbsent(id, t + 5000);
    expect(a.dueAt(id)).toBe(t + 5000);
    await b.planIfAbsent(id, t + 9000);
    expect(Number(await admin.zscore(keys.scheduleDue, id))).toBe(t + 5000);
    expect(b.dueAt(id)).toBe(t + 5000);
    await b.plan(id, t + 9000);
    expect(Number(await admin.zscore(keys.scheduleDue, id))).toBe(t + 9000);
    expect(b.dueAt(id)).toBe(t + 9000);
    expect(a.dueAt("never-planned")).toBeUndefined();
  });

  it("with 10,000 ids planned and none due, a poll is one script call that claims nothing", async () => {
    const q = replica();
    const t = clock.now();
    const pipe = admin.pipeline();
    for (let i = 0; i < 10_000; i++)
      pipe.zadd(keys.scheduleDue, t + HOUR + i, `app${i}/access_token`);
    await pipe.exec();
    const handed: string[] = [];
    start(q, (id) => handed.push(id));
    await advance(1200, 1200); // one poll, which also loads the script
    await admin.config("RESETSTAT");
    await advance(1200, 1200);
    const stats = commandStats(String(await admin.info("commandstats")));
    const other = Object.entries(stats).filter(([cmd]) => !/^(info|config)/.test(cmd));
    // The one command sent is EVALSHA; Redis also counts the commands the script runs:
    // two range lookups and a ZCARD, none per id.
    expect(Object.fromEntries(other)).toEqual({ evalsha: 1, zrangebyscore: 2, zcard: 1 });
    expect(handed).toEqual([]);
    expect(await admin.zcard(keys.scheduleDue)).toBe(10_000);
  });

  it("polls every pollMs ±10%, one poll at a time", async () => {
    const delays: number[] = [];
    const spy: Clock = {
      now: () => clock.now(),
      schedule: (fn, ms) => {
        delays.push(ms);
        return clock.schedule(fn, ms);
      },
    };
    const draws = [0, 0.5, 0.999];
    const q = replica({ clock: spy, pollMs: 1000, random: () => draws[delays.length % 3] ?? 0 });
    start(q, () => {});
    await advance(3000, 100);
    expect(delays.slice(0, 3)).toEqual([900, 1000, 1100]);
    expect(clock.pending).toBe(1);
  });

  it("keeps polling through a Redis outage, warning at most once per warnEveryMs", async () => {
    const lone = await startRedisServer();
    try {
      const log = captureLogger();
      const q = replica({ logger: log.logger, warnEveryMs: 60_000 }, lone.url);
      const taken: string[] = [];
      start(q, (id) => taken.push(id));
      await lone.stop("SIGKILL");
      await advance(5000, 1000);
      const warnings = () => log.lines().filter((l) => l.level === "warn");
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]?.msg).toMatch(/could not poll the refresh schedule/);
      await lone.start();
      await until(() => clients.at(-1)?.status === "ready", 5000, "reconnect");
      await q.plan("w/access_token", clock.now());
      await advance(2000, 1000);
      expect(taken).toEqual(["w/access_token"]);
      expect(log.lines().some((l) => /works again/.test(String(l.msg)))).toBe(true);
      expect(warnings()).toHaveLength(1);
    } finally {
      await lone.stop();
    }
  });

  it("close stops polling and can be called twice", async () => {
    const q = replica();
    start(q, () => {});
    expect(clock.pending).toBe(1);
    await stop(q);
    expect(clock.pending).toBe(0);
    await q.close();
    await q.plan("v/access_token", clock.now());
    await clock.advance(5000);
    expect(clock.pending).toBe(0);
  });
});

/** `INFO commandstats` as command → calls. */
function commandStats(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] ?? ""] = Number(m[2]);
  return out;
}
