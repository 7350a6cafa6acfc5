import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CredentialKey, NewCredential } from "../../../src/core/credential.js";
import type { CredentialUpdate } from "../../../src/core/ports/token-store.js";
import { silentLogger } from "../../../src/shared/logger.js";
import type { RedisClient } from "../../../src/store/redis/connection.js";
import type { RedisKeys } from "../../../src/store/redis/keys.js";
import {
  DEFAULT_RETENTION_MS,
  RedisTokenStore,
} from "../../../src/store/redis/redis-token-store.js";
import { ValueCipher, ValueDecryptionError } from "../../../src/store/redis/value-cipher.js";
import { recordLeakCandidate } from "../../helpers/leak-recorder.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { connect, delay, freshKeys, openStore, until } from "./helpers.js";

/**
 * What the Redis store does for users' grants beyond the shared contract:
 * tombstones, delete notices heard by other replicas (and forged ones only
 * re-read), the hash kept for a grant's renewable window, listing a kind
 * across many keys, and what it says about Redis's persistence.
 */

const DAY = 24 * 3_600_000;
const alice: CredentialKey = { appId: "wx-grants", kind: "user_access_token", subject: "o_alice" };
const bob: CredentialKey = { appId: "wx-grants", kind: "user_access_token", subject: "o_bob" };
const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => {
  const now = Date.now(); // one reading: see cluster.test.ts
  return { value, fetchedAt: now, expiresAt: now + 7_200_000, ...extra };
};
const refreshToken = (label: string): string => {
  const state = `${label}_${randomBytes(24).toString("base64url")}`;
  recordLeakCandidate("refresh_token", state);
  return state;
};

let server: RedisServer;
let admin: RedisClient;
const stores: RedisTokenStore[] = [];
beforeAll(async () => {
  server = await startRedisServer();
  admin = connect(server.url, "admin");
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

async function replica(keys: RedisKeys, name = `replica-${stores.length}`) {
  const store = await openStore(server.url, keys, name);
  stores.push(store);
  return store;
}

describe("delete", () => {
  it("leaves a tombstone of version and fence that lives at least as long as the record would have", async () => {
    const keys = freshKeys();
    const s = await replica(keys);
    const renewableUntil = Date.now() + 30 * DAY;
    await s.compareAndSet(alice, 0, 7, next("a1", { state: refreshToken("rt"), renewableUntil }));
    const before = await admin.pttl(keys.credential(alice));
    expect(await s.delete(alice, 1)).toBe(true);
    expect(await admin.hgetall(keys.credential(alice))).toEqual({
      version: "1",
      fence: "7",
      deleted: "1",
    });
    const after = await admin.pttl(keys.credential(alice));
    expect(after).toBeGreaterThan(before - 1000);
    // A record near its end still leaves a tombstone for a day.
    await s.compareAndSet(bob, 0, 1, next("b1"));
    await admin.pexpire(keys.credential(bob), 10_000);
    expect(await s.delete(bob, 1)).toBe(true);
    expect(await admin.pttl(keys.credential(bob))).toBeGreaterThan(DAY - 60_000);
  });

  it("is heard by another replica through onDelete, after it re-read the tombstone", async () => {
    const keys = freshKeys();
    const writer = await replica(keys);
    const other = await replica(keys);
    const deletedThere: CredentialKey[] = [];
    const heardThere: CredentialUpdate[] = [];
    other.onDelete((k) => deletedThere.push(k));
    other.subscribe((u) => heardThere.push(u));
    await writer.compareAndSet(alice, 0, 1, next("a1"));
    await until(() => heardThere.length === 1, "the write on the other replica");
    expect(await writer.delete(alice, 1)).toBe(true);
    await until(() => deletedThere.length === 1, "the delete on the other replica");
    expect(deletedThere).toEqual([alice]);
    expect(await other.get(alice)).toBeUndefined();
    // The other replica writes it anew: numbered above the deleted version, heard as an update.
    expect(await other.compareAndSet(alice, 0, 2, next("a-again"))).toMatchObject({
      written: true,
      credential: { version: 2 },
    });
    await until(() => heardThere.length === 2, "the new grant");
    expect(heardThere[1]?.credential.value).toBe("a-again");
    expect(deletedThere).toHaveLength(1);
  });

  it("a forged notice only makes replicas re-read: no delete is told while the credential is there", async () => {
    const keys = freshKeys();
    const s = await replica(keys);
    const deleted: CredentialKey[] = [];
    const heard: CredentialUpdate[] = [];
    s.onDelete((k) => deleted.push(k));
    s.subscribe((u) => heard.push(u));
    await s.compareAndSet(alice, 0, 1, next("a1"));
    await until(() => heard.length === 1, "the write");
    const forge = (message: object) => admin.publish(keys.updates, JSON.stringify(message));
    await forge({ id: "wx-grants/user_access_token/o_alice", version: "1", deleted: true });
    await forge({ id: "wx-grants/user_access_token/o_nobody", version: "9", deleted: true });
    await forge({ id: "wx-grants/user_access_token/o_alice", fields: { value: "forged" } });
    // A real delete is told once; a replayed or forged notice of it is not told again.
    await s.compareAndSet(bob, 0, 1, next("b1"));
    await until(() => heard.length === 2, "bob's grant");
    expect(await s.delete(bob, 1)).toBe(true);
    await until(() => deleted.length === 1, "the real delete");
    await forge({ id: "wx-grants/user_access_token/o_bob", version: "1" });
    await s.compareAndSet({ ...alice, subject: "o_marker" }, 0, 1, next("marker"));
    await until(() => heard.at(-1)?.credential.value === "marker", "the marker write");
    await delay(50);
    expect(deleted).toEqual([bob]);
    expect(heard.map((u) => u.credential.value)).toEqual(["a1", "b1", "marker"]);
    expect(await s.get(alice)).toMatchObject({ value: "a1", version: 1 });
  });
});

describe("renewableUntil", () => {
  it("keeps the hash until the grant can no longer be renewed, and a retention after", async () => {
    const keys = freshKeys();
    const s = await replica(keys);
    const renewableUntil = Date.now() + 30 * DAY;
    await s.compareAndSet(alice, 0, 1, next("a1", { state: refreshToken("rt"), renewableUntil }));
    const pttl = await admin.pttl(keys.credential(alice));
    expect(pttl).toBeGreaterThanOrEqual(renewableUntil - Date.now() + DEFAULT_RETENTION_MS - 1000);
    expect(pttl).toBeLessThanOrEqual(30 * DAY + DEFAULT_RETENTION_MS);
    expect(await admin.hget(keys.credential(alice), "renewableUntil")).toBe(String(renewableUntil));
    // Without one, the hash lives the token's life and the retention.
    await s.compareAndSet(bob, 0, 1, next("b1"));
    expect(await admin.pttl(keys.credential(bob))).toBeLessThanOrEqual(
      7_200_000 + DEFAULT_RETENTION_MS,
    );
    // Restored with the record.
    await admin.del(keys.credential(alice));
    const held = { ...next("held", { renewableUntil }), version: 4 };
    await s.restore(alice, held);
    expect(await admin.pttl(keys.credential(alice))).toBeGreaterThan(29 * DAY);
  });

  it("is bound into a sealed value: extended in Redis, the record no longer opens", async () => {
    const keys = freshKeys();
    const cipher = new ValueCipher([{ id: "k1", key: randomBytes(32) }]);
    const s = new RedisTokenStore({
      client: connect(server.url, "sealed"),
      keys,
      logger: silentLogger(),
      cipher,
    });
    stores.push(s);
    const renewableUntil = Date.now() + 30 * DAY;
    const state = refreshToken("sealed");
    await s.compareAndSet(alice, 0, 1, next("a1", { state, renewableUntil }));
    expect(await s.get(alice)).toMatchObject({ state, renewableUntil });
    await admin.hset(keys.credential(alice), "renewableUntil", String(renewableUntil + 365 * DAY));
    await expect(s.get(alice)).rejects.toThrow(ValueDecryptionError);
  });
});

describe("entries", () => {
  it("lists every credential of a kind over many SCAN batches, once each", async () => {
    const keys = freshKeys();
    const s = await replica(keys);
    const users = Array.from({ length: 700 }, (_, i) => ({ ...alice, subject: `o_user_${i}` }));
    await Promise.all(users.map((k) => s.compareAndSet(k, 0, 1, next(`v-${k.subject}`))));
    await s.compareAndSet({ appId: "wx-grants", kind: "access_token" }, 0, 1, next("app-token"));
    const listed = new Map<string, string>();
    for await (const { key, credential } of s.entries("user_access_token"))
      listed.set(String(key.subject), credential.value);
    expect(listed.size).toBe(users.length);
    for (const k of users) expect(listed.get(String(k.subject))).toBe(`v-${k.subject}`);
  });
});

describe("durability", () => {
  async function durabilityOf(args: string[]) {
    const own = await startRedisServer(args);
    const s = await openStore(own.url, freshKeys(), "durability");
    try {
      return await s.durability();
    } finally {
      await s.close();
      await own.stop();
    }
  }

  it("durable with AOF, saying what a crash loses", async () => {
    const d = await durabilityOf(["--appendonly", "yes"]);
    expect(d.durable).toBe(true);
    expect(d.detail).toMatch(/AOF is on \(appendfsync everysec\).*1 s/);
  });

  it("durable with RDB save points, saying the writes since the last snapshot are lost", async () => {
    const d = await durabilityOf(["--save", "3600 1"]);
    expect(d.durable).toBe(true);
    expect(d.detail).toMatch(/RDB snapshots \(save 3600 1\).*since the last snapshot/);
  });

  it("not durable with neither", async () => {
    const d = await durabilityOf([]); // the helper's --save "" --appendonly no
    expect(d.durable).toBe(false);
    expect(d.detail).toMatch(/persists nothing.*appendonly yes/);
  });

  it("never throws: an unreachable Redis is 'could not verify'", async () => {
    const own = await startRedisServer();
    const s = await openStore(own.url, freshKeys(), "durability-down");
    stores.push(s);
    await own.stop();
    const d = await s.durability();
    expect(d.durable).toBe(false);
    expect(d.detail).toMatch(/^could not verify Redis persistence/);
  });
});

describe("a grant a reader refuses", () => {
  it("is kept aside, not deleted, when a reader whose clock is 10 minutes behind sees it as fetched in the future; a new grant can then be written", async () => {
    const keys = freshKeys();
    const writer = await replica(keys);
    const behind = { now: () => Date.now() - 600_000, schedule: () => () => {} };
    const reader = new RedisTokenStore({
      client: connect(server.url, "behind"),
      keys,
      logger: silentLogger(),
      clock: behind,
    });
    stores.push(reader);
    await reader.subscribed();
    const state = refreshToken("aside");
    const written = await writer.compareAndSet(alice, 0, 1, next("tok_aside_0001", { state }));
    expect(written.written).toBe(true);

    expect(await reader.get(alice)).toBeUndefined();
    const aside = `${keys.credential(alice)}:refused`;
    expect(await admin.exists(keys.credential(alice))).toBe(0);
    expect(await admin.hget(aside, "state")).toBe(state);
    expect(await admin.pttl(aside)).toBeGreaterThan(29 * DAY);

    // The user authorizes again: the grant is written over nothing.
    const again = await reader.compareAndSet(alice, 0, 1, {
      value: "tok_aside_0002",
      fetchedAt: behind.now(),
      expiresAt: behind.now() + 7_200_000,
      state: refreshToken("aside-2"),
    });
    expect(again.written).toBe(true);
  });

  it("an account-level credential refused the same way is deleted, as before", async () => {
    const keys = freshKeys();
    const writer = await replica(keys);
    const reader = new RedisTokenStore({
      client: connect(server.url, "behind-2"),
      keys,
      logger: silentLogger(),
      clock: { now: () => Date.now() - 600_000, schedule: () => () => {} },
    });
    stores.push(reader);
    await reader.subscribed();
    const app: CredentialKey = { appId: "wx-grants", kind: "access_token" };
    await writer.compareAndSet(app, 0, 1, next("tok_app_aside_1"));
    expect(await reader.get(app)).toBeUndefined();
    expect(await admin.exists(keys.credential(app))).toBe(0);
    expect(await admin.exists(`${keys.credential(app)}:refused`)).toBe(0);
  });
});
