import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { connectRedis, parseRedisUrl, type RedisClient } from "../../src/store/redis/connection.js";
import type { WatchEvent } from "../../src/token/token-manager.js";
import {
  SENTINEL_MASTER_NAME,
  type SentinelSetup,
  startSentinelSetup,
} from "../helpers/redis-topologies.js";
import { CLASSIC, type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";
import { eventually, never } from "../helpers/token-harness.js";

/**
 * The whole token manager (lock, schedule, store, pub/sub) on three replicas
 * that reach Redis through Sentinel: one master, one replica, three sentinels.
 * The two failover tests kill the master, so they run last, in this order
 * (the second brings the killed node back as a replica first).
 */

const TOKEN = "/cgi-bin/token";
const KEY = { appId: "classic", kind: "access_token" } as const;

let setup: SentinelSetup;
beforeAll(async () => {
  setup = await startSentinelSetup();
});
afterAll(async () => {
  for (const a of admins) a.disconnect();
  await setup?.close();
});

describe("three replicas sharing Redis through Sentinel", () => {
  let h: ReplicaHarness;
  beforeEach(async () => {
    h = await startReplicas(3, setup.url);
  });
  afterEach(async () => {
    await h?.close();
  });

  it("300 concurrent GetToken on a cold cache, spread over the replicas, make exactly one upstream fetch", async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        replica(h, i % 3).manager.get("classic", "access_token", never),
      ),
    );
    expect(h.calls(TOKEN)).toBe(1);
    expect(h.calls(TOKEN, CLASSIC.appid)).toBe(1);
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set([1]));
    expect(h.emulator.control.checkToken(results[0]?.value ?? "").valid).toBe(true);
    // Each replica wrote what it fetched at most once, and together exactly once.
    expect(h.replicas.reduce((n, r) => n + r.manager.refreshesWritten, 0)).toBe(1);
  });

  it("a watcher on replica B receives the version a refresh on replica A wrote", async () => {
    const [a, b] = [replica(h, 0), replica(h, 1)];
    const { seen, done } = watchVersions(b, 2);
    await eventually(() => seen.length === 1, "the first version on B");
    const stale = await a.manager.get("classic", "access_token", never);
    const result = await a.manager.invalidate("classic", "access_token", stale.value, 40001, never);
    expect(result.outcome).toBe("refreshed");
    await done;
    expect(seen.map((e) => e.credential.version)).toEqual([1, 2]);
    expect(seen[1]?.credential.value).toBe(result.credential.value);
    expect(seen[1]?.credential.previousValidUntil).toBeDefined();
    expect(h.calls(TOKEN)).toBe(2);
    expect(h.emulator.control.checkToken(result.credential.value).valid).toBe(true);
  });

  it("a Sentinel failover: every replica serves from memory meanwhile, then one refresh reaches all of them, no version skipped", async () => {
    const [a, b] = [replica(h, 0), replica(h, 1)];
    const { seen, done } = watchVersions(b, 3);
    await eventually(() => seen.length === 1, "the first version on B");
    const refreshOnA = async () => {
      const current = await a.manager.get("classic", "access_token", never);
      return a.manager.invalidate("classic", "access_token", current.value, 40001, never);
    };
    // Version 2 is written just before the master dies: it may or may not have reached the replica.
    const v2 = (await refreshOnA()).credential;
    expect(v2.version).toBe(2);
    await eventually(
      () => h.replicas.every((r) => r.manager.peek("classic", "access_token")?.version === 2),
      "version 2 on every replica",
    );
    expect(h.calls(TOKEN)).toBe(2);

    const probe = connectRedis(parseRedisUrl(setup.url), { connectionName: "failover-probe" });
    probe.on("error", () => {}); // unreachable until the failover completes
    try {
      const killedAt = Date.now();
      const oldMaster = await setup.killMaster();
      // Poll for a working write in the background; until then every replica answers from memory.
      let writableAfterMs: number | undefined;
      const polling = (async () => {
        while (Date.now() - killedAt < 20_000) {
          if (await writable(probe)) {
            writableAfterMs = Date.now() - killedAt;
            return;
          }
          await sleep(50);
        }
      })();
      let rounds = 0;
      while (writableAfterMs === undefined) {
        if (Date.now() - killedAt > 20_000) throw new Error("no write worked 20 s after the kill");
        for (const r of h.replicas) {
          const t = await r.manager.get("classic", "access_token", never);
          expect(t.version).toBe(2);
          expect(t.value).toBe(v2.value);
        }
        rounds++;
        await sleep(20);
      }
      await polling;
      expect(await setup.masterPort()).not.toBe(oldMaster);
      // Sentinel needs a second without answers before it even starts a failover.
      expect(writableAfterMs).toBeGreaterThan(1000);
      expect(rounds).toBeGreaterThan(10); // served from memory throughout

      // Whether or not the new master got version 2, every replica's own
      // connection reads it back (written back with `restore` if it was lost).
      await eventuallyAsync(async () => {
        const stored = await Promise.all(
          h.replicas.map((r) => r.stores.store.get(KEY).catch(() => undefined)),
        );
        return stored.every((s) => s?.version === 2 && s.value === v2.value);
      }, "every replica reading version 2 from the new master");
      expect(h.calls(TOKEN)).toBe(2); // nothing fetched during the failover

      const v3 = await refreshOnA();
      expect(v3.outcome).toBe("refreshed");
      expect(v3.credential.version).toBe(3);
      expect(h.calls(TOKEN)).toBe(3);
      await done;
      expect(seen.map((e) => e.credential.version)).toEqual([1, 2, 3]);
      expect(seen[2]?.credential.value).toBe(v3.credential.value);
      await eventually(
        () =>
          h.replicas.every(
            (r) => r.manager.peek("classic", "access_token")?.value === v3.credential.value,
          ),
        "every replica on version 3",
      );
      for (const r of h.replicas)
        expect(r.manager.peek("classic", "access_token")?.version).toBe(3);
      expect(h.emulator.control.checkToken(v3.credential.value).valid).toBe(true);
      expect(h.calls(TOKEN)).toBe(3);
    } finally {
      probe.disconnect();
    }
  }, 40_000);

  it("the new master lost the last write: the replicas write it back, and versions only go up", async () => {
    // The previous test left one data node; bring a replica back, then cut it off the
    // master (a wrong masterauth keeps it from resyncing) so it misses version 2.
    const { replicaNode, masterNode } = await rejoinReplica(setup);
    const [a, b, c] = [replica(h, 0), replica(h, 1), replica(h, 2)];
    const { seen, done } = watchVersions(b, 3);
    await eventually(() => seen.length === 1, "the first version on B");
    // Version 1 reached the replica: WAIT counts acks of this connection's own writes (on a
    // connection that wrote nothing it answers at once), so write a marker after version 1
    // and wait for it; the replication stream is ordered, so version 1 was applied first.
    await masterNode.set("replication-marker", String(Date.now()));
    expect(await masterNode.call("WAIT", "1", "5000")).toBe(1);
    await replicaNode.config("SET", "masterauth", "not-the-password");
    await replicaNode.call("CLIENT", "KILL", "TYPE", "master");

    const before = await a.manager.get("classic", "access_token", never);
    const v2 = (await a.manager.invalidate("classic", "access_token", before.value, 40001, never))
      .credential;
    expect(v2.version).toBe(2);
    await eventually(
      () => h.replicas.every((r) => r.manager.peek("classic", "access_token")?.version === 2),
      "version 2 on every replica",
    );
    // What C's store hears from now on (it may miss the write-back itself if its
    // subscriber reconnects after it; it then reads version 2 on resync).
    const heard: number[] = [];
    c.stores.store.subscribe((u) => {
      if (u.key.appId === "classic" && u.key.kind === "access_token")
        heard.push(u.credential.version);
    });

    // The fence of version 2's writer, and the one the cut-off replica still has (version 1's).
    const fenceOfV2 = (await storedFields(masterNode, v2.value)).fence;
    const fenceOnReplica = (await storedFields(replicaNode, before.value)).fence;
    expect(fenceOnReplica).not.toBe(fenceOfV2);
    const oldMaster = await setup.killMaster();
    const newMaster = await setup.waitForNewMaster(oldMaster, 20_000);
    expect(newMaster).toBe(replicaNode.options.port);
    await replicaNode.config("SET", "masterauth", "");
    // Every replica reads version 2 again: the new master had only version 1, so it was written back.
    await eventuallyAsync(async () => {
      const stored = await Promise.all(
        h.replicas.map((r) => r.stores.store.get(KEY).catch(() => undefined)),
      );
      return stored.every((s) => s?.version === 2 && s.value === v2.value);
    }, "version 2 written back to the new master");
    // It is the replicas' write-back, not a late replication: `restore` keeps the fence the new
    // master had (version 1's; 0 over nothing), while a replicated version 2 carries its writer's.
    const restored = await storedFields(replicaNode, v2.value);
    expect(restored.version).toBe("2");
    expect([fenceOnReplica, "0"]).toContain(restored.fence);
    expect(heard.every((v) => v === 2)).toBe(true);
    for (const r of h.replicas) expect(r.manager.peek("classic", "access_token")?.version).toBe(2);
    expect(h.calls(TOKEN)).toBe(2);

    const v3 = await a.manager.invalidate("classic", "access_token", v2.value, 40001, never);
    expect(v3.outcome).toBe("refreshed");
    expect(v3.credential.version).toBe(3);
    expect(h.calls(TOKEN)).toBe(3);
    await done;
    expect(seen.map((e) => e.credential.version)).toEqual([1, 2, 3]);
    await eventually(
      () => h.replicas.every((r) => r.manager.peek("classic", "access_token")?.version === 3),
      "every replica on version 3",
    );
    expect(heard.filter((v) => v !== 2)).toEqual([3]);
  }, 60_000);
});

/**
 * Starts a data node that is down again as a replica of the current master,
 * and waits until it is in sync and every sentinel sees it as a healthy replica.
 */
async function rejoinReplica(s: SentinelSetup): Promise<{ replicaNode: Redis; masterNode: Redis }> {
  const masterPort = await s.masterPort();
  const down = s.servers.find((x) => x.port !== masterPort && !x.running);
  const node = down ?? s.servers.find((x) => x.port !== masterPort);
  if (!node) throw new Error("no data node besides the master");
  if (down) await down.start();
  const conn = adminConnection(node.port);
  const masterNode = adminConnection(masterPort);
  await conn.call("REPLICAOF", "127.0.0.1", String(masterPort));
  await eventuallyAsync(
    async () => {
      const info = await conn.info("replication");
      return info.includes("master_link_status:up");
    },
    "the replica in sync",
    20_000,
  );
  await eventuallyAsync(
    async () => {
      for (const port of s.sentinelPorts) {
        const sentinel = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 });
        sentinel.on("error", () => {});
        try {
          const replicas = (await sentinel.call(
            "SENTINEL",
            "REPLICAS",
            SENTINEL_MASTER_NAME,
          )) as string[][];
          const mine = replicas.map(fieldsOf).find((r) => r.port === String(node.port));
          if (mine?.flags !== "slave") return false;
        } finally {
          sentinel.disconnect();
        }
      }
      return true;
    },
    "every sentinel seeing a healthy replica",
    15_000,
  );
  return { replicaNode: conn, masterNode };
}

/** The fields of the credential hash (under any key prefix) whose value is `value`. */
async function storedFields(conn: Redis, value: string): Promise<Record<string, string>> {
  let cursor = "0";
  do {
    const [next, keys] = await conn.scan(cursor, "MATCH", "*:{classic/access_token}:cred");
    for (const key of keys) {
      const fields = await conn.hgetall(key);
      if (fields.value === value) return fields;
    }
    cursor = next;
  } while (cursor !== "0");
  throw new Error("no stored credential has that value");
}

const admins: Redis[] = [];

/** A harness connection to one process, closed in afterAll. */
function adminConnection(port: number): Redis {
  const conn = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 });
  conn.on("error", () => {}); // the master is killed on purpose
  admins.push(conn);
  return conn;
}

/** SENTINEL REPLICAS answers each replica as a flat [field, value, …] list. */
function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

function replica(h: ReplicaHarness, i: number) {
  const r = h.replicas[i];
  if (!r) throw new Error(`no replica ${i}`);
  return r;
}

/** Collects the first `count` events of a watch of the classic token on `r`. */
function watchVersions(
  r: ReplicaHarness["replicas"][number],
  count: number,
): { seen: WatchEvent[]; done: Promise<void> } {
  const seen: WatchEvent[] = [];
  const ac = new AbortController();
  const done = (async () => {
    for await (const e of r.manager.watch("classic", "access_token", ac.signal)) {
      seen.push(e);
      if (seen.length === count) return;
    }
  })();
  return { seen, done };
}

/** True once the master the sentinels name accepts a write. */
async function writable(client: RedisClient): Promise<boolean> {
  try {
    await client.set("failover-probe", String(Date.now()), "PX", 60_000);
    return true;
  } catch {
    return false;
  }
}

async function eventuallyAsync(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
