import { setMaxListeners } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RefreshLock } from "../../src/core/ports/refresh-lock.js";
import type { InvalidateResult } from "../../src/token/token-manager.js";
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

describe("a replica waiting for another's refresh", () => {
  let h: ReplicaHarness | undefined;
  afterEach(async () => {
    await h?.close();
  });

  it("sees the holder's write even when it lands right after its own lock attempt failed", async () => {
    // Replica B's lock: when B finds the lock taken, hold B's answer until A's
    // write has been stored and notified to B. That is the window in which a
    // waiter that subscribes only after the failed attempt misses the write.
    let holderDone: Promise<unknown> = Promise.resolve();
    const inWindow: RefreshLock[] = [];
    h = await startReplicas(2, redis.url, {
      wrapLock: (i, lock) => {
        if (i !== 1) return lock;
        const wrapped: RefreshLock = {
          async withLock(key, fn) {
            const result = await lock.withLock(key, fn);
            if (!result.acquired) {
              inWindow.push(wrapped);
              await holderDone;
              await eventually(
                () => h?.replicas[1]?.manager.peek(key.appId, key.kind)?.version === 2,
                "B notified of A's write",
              );
            }
            return result;
          },
          close: () => lock.close(),
        };
        return wrapped;
      },
    });
    const [a, b] = h.replicas;
    const stale = await a?.manager.get("classic", "access_token", never);
    await b?.manager.get("classic", "access_token", never);
    // A holds the lock through a slow fetch (real time; the replicas' clock stands still).
    h.emulator.control.injectFault({
      endpoint: TOKEN,
      times: 1,
      action: { type: "latency", ms: 1000 },
    });
    holderDone =
      a?.manager.invalidate("classic", "access_token", stale?.value ?? "", 40001, never) ??
      Promise.resolve();
    await eventually(() => h?.calls(TOKEN) === 2, "A fetching under the lock");

    // The clock never moves: a waiter that missed the write would wait forever.
    const waited = b?.manager.invalidate(
      "classic",
      "access_token",
      stale?.value ?? "",
      40001,
      never,
    );
    const result = await Promise.race([
      waited,
      new Promise<"stuck">((r) => setTimeout(() => r("stuck"), 8000)),
    ]);
    expect(inWindow).toHaveLength(1); // B did find the lock taken
    expect(result).not.toBe("stuck");
    const res = result as InvalidateResult;
    expect(res.credential.version).toBe(2);
    expect(res.outcome).toBe("already_replaced");
    expect(h.calls(TOKEN)).toBe(2);
  }, 30_000);
});
