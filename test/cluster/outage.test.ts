import { setMaxListeners } from "node:events";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/token/token-manager.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";
import { eventually } from "../helpers/token-harness.js";

const never = new AbortController().signal;
setMaxListeners(0, never);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("Redis outages", () => {
  let h: ReplicaHarness;
  beforeEach(async () => {
    if (!redis.running) await redis.start();
    h = await startReplicas(3, redis.url);
  });
  afterEach(async () => {
    if (!redis.running) await redis.start();
    await h.close();
  });

  it("a watcher on B keeps receiving A's refreshes across a Redis restart, none skipped", async () => {
    const [a, b] = h.replicas;
    const ac = new AbortController();
    const seen: WatchEvent[] = [];
    const watching = (async () => {
      for await (const e of b?.manager.watch("classic", "access_token", ac.signal) ?? []) {
        seen.push(e);
        if (seen.length === 4) return;
      }
    })();
    await eventually(() => seen.length === 1, "first version on B");
    const refreshOnA = async () => {
      const current = await a?.manager.get("classic", "access_token", never);
      await a?.manager.invalidate("classic", "access_token", current?.value ?? "", 40001, never);
    };
    await refreshOnA();
    await eventually(() => seen.length === 2, "version 2 on B");

    // Redis restarts empty (no persistence): the replicas write back what it lost.
    await redis.stop("SIGKILL");
    await redis.start();
    await eventuallyAsync(
      async () =>
        (await h.replicas[2]?.stores.store.get({ appId: "classic", kind: "access_token" }))
          ?.version === 2,
      "version 2 restored into Redis",
    );
    await refreshOnA();
    await refreshOnA();
    await watching;
    expect(seen.map((e) => e.credential.version)).toEqual([1, 2, 3, 4]);
  });

  it("Redis down for 20 s: every replica keeps serving its valid token, and afterwards all converge on one version", async () => {
    const first = await Promise.all(
      h.replicas.map((r) => r.manager.get("classic", "access_token", never)),
    );
    expect(new Set(first.map((t) => t.version))).toEqual(new Set([1]));
    await redis.stop("SIGKILL");
    const started = Date.now();
    while (Date.now() - started < 20_000) {
      await h.clock.advance(60_000); // a minute of token life per real second
      for (const r of h.replicas) {
        const t = await r.manager.get("classic", "access_token", never);
        expect(t.value).toBe(first[0]?.value);
        expect(h.emulator.control.checkToken(t.value).valid).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(h.calls("/cgi-bin/token")).toBe(1);
    await redis.start();
    // Back: the store was lost; the replicas write their copy back and agree on it.
    await eventuallyAsync(
      async () => {
        const stored = await h.replicas[0]?.stores.store
          .get({ appId: "classic", kind: "access_token" })
          .catch(() => undefined);
        return stored?.version === 1 && stored.value === first[0]?.value;
      },
      "the token written back",
      15_000,
    );
    const current = await h.replicas[1]?.manager.get("classic", "access_token", never);
    await h.replicas[1]?.manager.invalidate(
      "classic",
      "access_token",
      current?.value ?? "",
      40001,
      never,
    );
    await eventually(
      () => h.replicas.every((r) => r.manager.peek("classic", "access_token")?.version === 2),
      "all replicas on version 2",
    );
    expect(h.calls("/cgi-bin/token")).toBe(2);
  }, 60_000);
});

async function eventuallyAsync(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
