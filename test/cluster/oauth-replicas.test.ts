import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CredentialKey } from "../../src/core/credential.js";
import { ReauthorizeError } from "../../src/shared/errors.js";
import { Secret } from "../../src/shared/secret.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type ReplicaHarness, startReplicas } from "../helpers/replica-harness.js";

/**
 * Users' grants across three replicas (separate cores, each with its own
 * Redis connections, built by the production composition) on one real
 * redis-server with AOF: one upstream call per code and per refresh for the
 * whole cluster, a void grant gone everywhere, and grants that survive a
 * restart of Redis and of every replica.
 */

const never = new AbortController().signal;
setMaxListeners(0, never);
const APP = { id: "web", appid: "wx000000000000oar1", secret: "web-secret-replicas-01" };
const EXCHANGE = "/sns/oauth2/access_token";
const REFRESH = "/sns/oauth2/refresh_token";
const userKey = (openid: string): CredentialKey => ({
  appId: APP.id,
  kind: "user_access_token",
  subject: openid,
});

let redis: RedisServer;
let h: ReplicaHarness | undefined;
beforeAll(async () => {
  redis = await startRedisServer(["--appendonly", "yes", "--appendfsync", "always"]);
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  if (!redis.running) await redis.start();
  await h?.close();
  h = undefined;
});

// Values and grants sealed at rest, as production should run.
const KEY = { id: "k1", key: new Secret(randomBytes(32).toString("base64")) };

async function cluster(prefix?: string): Promise<ReplicaHarness> {
  h = await startReplicas(3, redis.url, {
    apps: [APP],
    encryptionKeys: () => [KEY],
    ...(prefix ? { prefix } : {}),
  });
  return h;
}

/** Runs `work` while moving the fake clock in small steps, so replicas polling for another's exchange wake up. */
async function withTicks<T>(harness: ReplicaHarness, work: Promise<T>): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  // Paced in real time too: the claimer's call to the emulator takes real
  // time, and fake time racing ahead would make the waiters give up.
  while (!done) {
    await harness.clock.advance(100);
    await new Promise((r) => setTimeout(r, 20));
  }
  return settled;
}

describe("users' grants on three replicas sharing Redis", () => {
  it("50 concurrent exchanges of one code, spread over the replicas, make one upstream call and give one grant", async () => {
    const c = await cluster();
    const code = c.emulator.control.authorizeUser(APP.appid, {
      openid: "o-cluster-1",
      scope: "snsapi_base",
    }).code;
    const answers = await withTicks(
      c,
      Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          c.replicas[i % 3]?.core.oauth.exchange(APP.id, code, "web-frontend", never),
        ),
      ),
    );
    expect(c.calls(EXCHANGE, APP.appid)).toBe(1);
    const values = new Set(answers.map((a) => a?.outcome.credential.value));
    expect(values.size).toBe(1);
    expect(answers.every((a) => a?.outcome.openid === "o-cluster-1")).toBe(true);
  });

  it("a user token past expiry is refreshed once for 100 concurrent callers on three replicas", async () => {
    const c = await cluster();
    const code = c.emulator.control.authorizeUser(APP.appid, {
      openid: "o-cluster-2",
      scope: "snsapi_base",
    }).code;
    const first = await c.replicas[0]?.core.oauth.exchange(APP.id, code, "web", never);
    await c.clock.advance(7_300_000);
    const got = await withTicks(
      c,
      Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          c.replicas[i % 3]?.manager.get(APP.id, "user_access_token", never, "o-cluster-2"),
        ),
      ),
    );
    expect(c.calls(REFRESH, APP.appid)).toBe(1);
    const values = new Set(got.map((g) => g?.value));
    expect(values.size).toBe(1);
    expect([...values][0]).not.toBe(first?.outcome.credential.value);
  });

  it("a grant WeChat voided on one replica is gone on all: their watchers end with REAUTHORIZE", async () => {
    const c = await cluster();
    const code = c.emulator.control.authorizeUser(APP.appid, {
      openid: "o-cluster-3",
      scope: "snsapi_base",
    }).code;
    await c.replicas[0]?.core.oauth.exchange(APP.id, code, "web", never);
    const watchOn = c.replicas[2];
    if (!watchOn) throw new Error("no replica");
    const watch = watchOn.manager.watch(APP.id, "user_access_token", never, "o-cluster-3");
    await watch.next();
    const ended = watch.next().then(
      () => undefined,
      (err: unknown) => err,
    );
    c.emulator.control.changeUserPassword(APP.appid, "o-cluster-3");
    await c.clock.advance(7_300_000);
    await expect(
      c.replicas[1]?.manager.get(APP.id, "user_access_token", never, "o-cluster-3"),
    ).rejects.toBeInstanceOf(ReauthorizeError);
    expect(await ended).toBeInstanceOf(ReauthorizeError);
    for (const r of c.replicas) {
      expect(await r.stores.store.get(userKey("o-cluster-3"))).toBeUndefined();
    }
  });

  it("every grant survives a restart of Redis (AOF) and of all three replicas", async () => {
    const c = await cluster();
    const users = Array.from({ length: 20 }, (_, i) => `o-keep-${i}`);
    const before = new Map<string, string>();
    for (const [i, openid] of users.entries()) {
      const code = c.emulator.control.authorizeUser(APP.appid, {
        openid,
        scope: "snsapi_base",
      }).code;
      const r = await c.replicas[i % 3]?.core.oauth.exchange(APP.id, code, "web", never);
      before.set(openid, r?.outcome.credential.value ?? "");
    }
    expect(await c.replicas[0]?.stores.store.durability()).toMatchObject({ durable: true });
    const { prefix } = c;
    await c.close();
    h = undefined;
    await redis.stop("SIGKILL");
    await redis.start();
    const again = await cluster(prefix);
    for (const [i, openid] of users.entries()) {
      const token = await again.replicas[i % 3]?.manager.get(
        APP.id,
        "user_access_token",
        never,
        openid,
      );
      expect(token?.value).toBe(before.get(openid));
    }
    // Nothing had to be re-fetched: the grants came back as stored.
    expect(again.calls(REFRESH, APP.appid)).toBe(0);
  });
});
