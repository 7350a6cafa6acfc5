import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../../src/shared/secret.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { startReplicas } from "../helpers/replica-harness.js";

const never = new AbortController().signal;
setMaxListeners(0, never);
const k1 = { id: "k1", key: new Secret(randomBytes(32).toString("base64")) };
const k2 = { id: "k2", key: new Secret(randomBytes(32).toString("base64")) };

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("tokens encrypted at rest across replicas", () => {
  it("Redis holds only ciphertext, and a key rotation in progress keeps every replica serving", async () => {
    // Replica 0 still encrypts with k1 (and knows k2); replica 1 already encrypts with k2 (and knows k1).
    const h = await startReplicas(2, redis.url, {
      encryptionKeys: (i) => (i === 0 ? [k1, k2] : [k2, k1]),
    });
    const client = new Redis(redis.url);
    try {
      const [a, b] = h.replicas;
      const first = await a?.manager.get("classic", "access_token", never);
      const stored = await client.hget(`${h.prefix}:{classic/access_token}:cred`, "value");
      expect(stored).toMatch(/^v2:k1:/);
      expect(stored).not.toContain(first?.value ?? "-");
      expect((await b?.manager.get("classic", "access_token", never))?.value).toBe(first?.value);

      await b?.manager.invalidate("classic", "access_token", first?.value ?? "", 40001, never);
      const second = await client.hget(`${h.prefix}:{classic/access_token}:cred`, "value");
      expect(second).toMatch(/^v2:k2:/);
      await expect.poll(() => a?.manager.peek("classic", "access_token")?.version).toBe(2);
      const viaA = await a?.manager.get("classic", "access_token", never);
      expect(h.emulator.control.checkToken(viaA?.value ?? "").valid).toBe(true);
      const everything = JSON.stringify(
        await client.hgetall(`${h.prefix}:{classic/access_token}:cred`),
      );
      expect(everything).not.toContain(viaA?.value ?? "-");
    } finally {
      client.disconnect();
      await h.close();
    }
  });
});
