import { setMaxListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { CLASSIC, STABLE, startReplicas } from "../helpers/replica-harness.js";

const never = new AbortController().signal;
setMaxListeners(0, never);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("a simulated day on three replicas", () => {
  it("fetches each app's token once per rotation, spread over the replicas, and never serves an invalid one", async () => {
    const LIFETIME_S = 1800;
    const STEP_MS = 30_000;
    const h = await startReplicas(3, redis.url, {
      tokenLifetimeSeconds: LIFETIME_S,
      schedulePollMs: STEP_MS,
    });
    try {
      for (const r of h.replicas) {
        await r.manager.get("classic", "access_token", never);
        await r.manager.get("stable", "access_token", never);
      }
      const end = h.clock.now() + 24 * 3_600_000;
      while (h.clock.now() < end) {
        await h.clock.advance(STEP_MS);
        await h.quiet();
        for (const [i, r] of h.replicas.entries()) {
          for (const app of ["classic", "stable"]) {
            const t = await r.manager.get(app, "access_token", never);
            expect(h.emulator.control.checkToken(t.value).valid, `${app} on replica ${i}`).toBe(
              true,
            );
          }
        }
      }
      const classic = h.replicas[0]?.manager.peek("classic", "access_token");
      const stable = h.replicas[0]?.manager.peek("stable", "access_token");
      // Every fetch made exactly one new version: no duplicate, no wasted call.
      expect(h.calls("/cgi-bin/token", CLASSIC.appid)).toBe(classic?.version);
      expect(h.calls("/cgi-bin/stable_token", STABLE.appid)).toBe(stable?.version);
      // Classic: a 1800 s token refreshed 450-540 s early (plus up to one 30 s poll) lasts
      // 1260-1380 s: 62-69 a day. Stable: refreshed 240-288 s early, inside WeChat's last
      // 5 minutes, it lasts 1512-1590 s: 54-58 a day.
      expect(classic?.version).toBeGreaterThanOrEqual(62);
      expect(classic?.version).toBeLessThanOrEqual(70);
      expect(stable?.version).toBeGreaterThanOrEqual(54);
      expect(stable?.version).toBeLessThanOrEqual(58);
      // The refreshes were spread over the replicas, and together made every version.
      const perReplica = h.replicas.map((r) => r.manager.refreshesWritten);
      expect(
        perReplica.every((n) => n > 5),
        `refreshes per replica: ${perReplica}`,
      ).toBe(true);
      expect(perReplica.reduce((a, b) => a + b, 0)).toBe(
        (classic?.version ?? 0) + (stable?.version ?? 0),
      );
      // All replicas agree.
      for (const r of h.replicas)
        expect(r.manager.peek("classic", "access_token")?.version).toBe(classic?.version);
    } finally {
      await h.close();
    }
  }, 120_000);
});
