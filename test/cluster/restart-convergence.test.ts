import { setMaxListeners } from "node:events";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StoredCredential } from "../../src/core/credential.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";

/**
 * Issue 9 item 15: after Redis restarts empty, a replica that fetches at once
 * (rotating the token at WeChat) races the others' write-back of the old one.
 * The cluster must settle on the token WeChat issued last, and no two
 * different values may ever share a version.
 */

const never = new AbortController().signal;
setMaxListeners(0, never);
const CYCLES = 10;
const classic = { appId: "classic", kind: "access_token" } as const;

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("Redis killed and restarted empty, a replica fetching at once", () => {
  let h: ReplicaHarness;
  beforeEach(async () => {
    if (!redis.running) await redis.start();
    h = await startReplicas(3, redis.url);
  });
  afterEach(async () => {
    if (!redis.running) await redis.start();
    await h.close();
  });

  it(`converges on the token WeChat issued last, with one value per version (${CYCLES} cycles)`, async () => {
    // Every (version, value) any replica holds or any call returns, sampled throughout.
    const valuesOf = new Map<number, Set<string>>();
    const note = (c: StoredCredential | undefined) => {
      if (!c) return;
      const seen = valuesOf.get(c.version) ?? new Set<string>();
      seen.add(c.value);
      valuesOf.set(c.version, seen);
    };
    const sample = () => {
      for (const r of h.replicas) note(r.manager.peek("classic", "access_token"));
    };
    const sampler = setInterval(sample, 2);
    const failures: string[] = [];
    try {
      for (const r of h.replicas) note(await r.manager.get("classic", "access_token", never));
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        // Report budgets refill, and the token replaced last cycle is past its grace.
        await h.clock.advance(10 * 60_000);
        const held = h.replicas[0]?.manager.peek("classic", "access_token");
        await redis.stop("SIGKILL");
        await redis.start();
        // Right after Redis returns, replica 0 is told its token was rejected and
        // refreshes (a rotation at WeChat), racing the others' write-back.
        const deadline = Date.now() + 15_000;
        for (;;) {
          try {
            note(
              (
                await h.replicas[0]?.manager.invalidate(
                  "classic",
                  "access_token",
                  held?.value ?? "",
                  40001,
                  never,
                )
              )?.credential,
            );
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
        const converged = await waitFor(async () => {
          sample();
          const held = h.replicas.map((r) => r.manager.peek("classic", "access_token"));
          const stored = await h.replicas[1]?.stores.store.get(classic).catch(() => undefined);
          note(stored);
          return (
            !h.replicas.some((r) => r.manager.refreshing) &&
            held.every((c) => c?.value === stored?.value && c?.version === stored?.version) &&
            h.emulator.control.checkToken(stored?.value ?? "").role === "current"
          );
        }, 15_000);
        if (!converged) {
          const now = h.replicas.map((r) => r.manager.peek("classic", "access_token"));
          failures.push(
            `cycle ${cycle}: replicas hold versions ${now.map((c) => c?.version).join(", ")}, roles at WeChat ${now
              .map((c) => h.emulator.control.checkToken(c?.value ?? "").role ?? "invalid")
              .join(", ")}`,
          );
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const shared = [...valuesOf].filter(([, values]) => values.size > 1).map(([v]) => v);
    expect({ failures, versionsWithTwoValues: shared }).toEqual({
      failures: [],
      versionsWithTwoValues: [],
    });
  }, 300_000);
});

/** Polls `condition` in real time; false if it never held within `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
