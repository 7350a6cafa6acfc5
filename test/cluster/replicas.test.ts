import { setMaxListeners } from "node:events";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/token/token-manager.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";
import { eventually } from "../helpers/token-harness.js";

const TOKEN = "/cgi-bin/token";
const never = new AbortController().signal;
setMaxListeners(0, never);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("three replicas sharing Redis", () => {
  let h: ReplicaHarness;
  beforeEach(async () => {
    // Some tests drive refreshes with reports, more than the default burst of 3.
    h = await startReplicas(3, redis.url, { reportBudget: { burst: 100, refillMs: 300_000 } });
  });
  afterEach(async () => {
    await h.close();
  });

  it("1000 concurrent GetToken on a cold cache, spread over the replicas, make exactly one upstream fetch", async () => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        h.replicas[i % 3]?.manager.get("classic", "access_token", never),
      ),
    );
    expect(h.calls(TOKEN)).toBe(1);
    expect(new Set(results.map((r) => r?.value)).size).toBe(1);
    expect(h.emulator.control.checkToken(results[0]?.value ?? "").valid).toBe(true);
  });

  it("1000 concurrent InvalidateToken of the same stale value make exactly one refresh, and one caller is told so", async () => {
    const stale = await h.replicas[0]?.manager.get("classic", "access_token", never);
    await Promise.all(h.replicas.map((r) => r.manager.get("classic", "access_token", never)));
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        h.replicas[i % 3]?.manager.invalidate(
          "classic",
          "access_token",
          stale?.value ?? "",
          40001,
          never,
        ),
      ),
    );
    expect(h.calls(TOKEN)).toBe(2);
    expect(results.filter((r) => r?.outcome === "refreshed")).toHaveLength(1);
    expect(new Set(results.map((r) => r?.credential.version))).toEqual(new Set([2]));
  });

  it("a warm replica answers from memory: no Redis, no WeChat", async () => {
    const r0 = h.replicas[0];
    await r0?.manager.get("classic", "access_token", never);
    await redis.stop("SIGKILL");
    try {
      for (let i = 0; i < 100; i++) {
        expect((await r0?.manager.get("classic", "access_token", never))?.version).toBe(1);
      }
      expect(h.calls(TOKEN)).toBe(1);
    } finally {
      await redis.start();
    }
  });

  it("the replica that refreshed serves the new version at once, before Redis notifies it", async () => {
    const a = h.replicas[0];
    let current = await a?.manager.get("classic", "access_token", never);
    for (let i = 0; i < 20; i++) {
      const result = await a?.manager.invalidate(
        "classic",
        "access_token",
        current?.value ?? "",
        40001,
        never,
      );
      expect(result?.outcome).toBe("refreshed");
      current = await a?.manager.get("classic", "access_token", never);
      expect(current?.version).toBe(result?.credential.version);
    }
  });

  it("a watcher on replica B receives, in order, every version refreshed on replica A", async () => {
    const [a, b] = h.replicas;
    const ac = new AbortController();
    const seen: WatchEvent[] = [];
    const watching = (async () => {
      for await (const e of b?.manager.watch("classic", "access_token", ac.signal) ?? []) {
        seen.push(e);
        if (seen.length === 6) return;
      }
    })();
    await eventually(() => seen.length === 1, "first version on B");
    for (let i = 0; i < 5; i++) {
      const current = await a?.manager.get("classic", "access_token", never);
      await a?.manager.invalidate("classic", "access_token", current?.value ?? "", 40001, never);
    }
    await watching;
    expect(seen.map((e) => e.credential.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.slice(1).every((e) => e.credential.previousValidUntil !== undefined)).toBe(true);
  });
});
