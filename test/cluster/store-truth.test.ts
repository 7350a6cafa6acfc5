import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Secret } from "../../src/shared/secret.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";
import { eventually } from "../helpers/token-harness.js";

/**
 * Issue 9 item 1: whoever can PUBLISH (or HSET) in Redis must not choose the
 * token replicas serve. The store is the only source of truth; update
 * messages are hints to re-read it.
 */

const never = new AbortController().signal;
setMaxListeners(0, never);
const k1 = { id: "k1", key: new Secret(randomBytes(32).toString("base64")) };
const FORGED = "FORGED_TOKEN_chosen_by_an_attacker_0123456789";

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("the store is the only source of truth (encryption keys configured)", () => {
  let h: ReplicaHarness;
  let client: Redis;
  beforeEach(async () => {
    h = await startReplicas(3, redis.url, { encryptionKeys: () => [k1] });
    client = new Redis(redis.url);
  });
  afterEach(async () => {
    client.disconnect();
    await h.close();
  });

  const servedBy = () => h.replicas.map((r) => r.manager.peek("classic", "access_token")?.value);
  const credKey = () => `${h.prefix}:{classic/access_token}:cred`;
  /** Waits until every replica has re-read the store after the notices sent so far. */
  async function settle(): Promise<void> {
    const marker = `${h.prefix}-marker`;
    const heard = new Set<number>();
    const unsubs = h.replicas.map((r, i) =>
      r.stores.store.subscribe((u) => {
        if (u.key.appId === marker) heard.add(i);
      }),
    );
    await h.replicas[0]?.stores.store.compareAndSet({ appId: marker, kind: "access_token" }, 0, 1, {
      value: "marker",
      fetchedAt: h.clock.now(),
      expiresAt: h.clock.now() + 60_000,
    });
    await eventually(() => heard.size === h.replicas.length, "every replica heard the marker");
    for (const u of unsubs) u();
  }

  it("a forged PUBLISH (plaintext value, high version) is served by no replica; a later real refresh is", async () => {
    const real = await Promise.all(
      h.replicas.map((r) => r.manager.get("classic", "access_token", never)),
    );
    expect(new Set(real.map((t) => t.value)).size).toBe(1);
    const now = h.clock.now();
    const fields = {
      value: FORGED,
      version: "999",
      fence: "999",
      fetchedAt: String(now),
      expiresAt: String(now + 7_200_000),
    };
    // The message format of the previous release, and the current one with a value added.
    await client.publish(
      `${h.prefix}:updates`,
      JSON.stringify({ id: "classic/access_token", fields }),
    );
    await client.publish(
      `${h.prefix}:updates`,
      JSON.stringify({ id: "classic/access_token", ...fields }),
    );
    await settle();
    expect(servedBy()).toEqual(real.map((t) => t.value));
    for (const r of h.replicas)
      expect((await r.manager.get("classic", "access_token", never)).value).not.toBe(FORGED);

    // A real refresh (version 2, far below the forged 999) reaches every replica.
    const refreshed = await h.replicas[1]?.manager.invalidate(
      "classic",
      "access_token",
      real[0]?.value ?? "",
      40001,
      never,
    );
    expect(refreshed?.credential.version).toBe(2);
    await eventually(
      () => servedBy().every((v) => v === refreshed?.credential.value),
      "every replica on the real refresh",
    );
    expect(h.emulator.control.checkToken(refreshed?.credential.value ?? "").role).toBe("current");
  });

  it("a plaintext record HSET into Redis, announced with a high version, is refused and replaced by the next refresh", async () => {
    const first = await h.replicas[0]?.manager.get("classic", "access_token", never);
    // Every replica holds it before the forgery: a replica still re-reading
    // the first write's notice would otherwise read the forged record instead.
    await eventually(
      () => servedBy().every((v) => v === first?.value),
      "every replica on the first token",
    );
    const now = h.clock.now();
    await client.hset(credKey(), {
      value: FORGED,
      version: "999",
      fence: "0",
      fetchedAt: String(now),
      expiresAt: String(now + 7_200_000),
    });
    await client.publish(
      `${h.prefix}:updates`,
      JSON.stringify({ id: "classic/access_token", version: "999" }),
    );
    await settle();
    expect(servedBy()).toEqual(h.replicas.map(() => first?.value));
    // Refused records are deleted, so a refresh can write over them.
    expect(await client.exists(credKey())).toBe(0);
    const result = await h.replicas[2]?.manager.invalidate(
      "classic",
      "access_token",
      first?.value ?? "",
      40001,
      never,
    );
    const fresh = result?.credential;
    expect(fresh?.value).not.toBe(first?.value);
    expect(fresh?.value).not.toBe(FORGED);
    expect(fresh?.version).toBeGreaterThan(first?.version ?? 0);
    await eventually(
      () => servedBy().every((v) => v === fresh?.value),
      "every replica on the refresh",
    );
    expect(await client.hget(credKey(), "value")).toMatch(/^v2:k1:/);
  });
});
