import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NewCredential } from "../../../src/core/credential.js";
import type { CredentialUpdate } from "../../../src/core/ports/token-store.js";
import { StoreUnavailableError } from "../../../src/shared/errors.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";
import type { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";
import { loadScripts } from "../../../src/store/redis/scripts.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { captureLogger, connect, freshKeys, openStore, scanAll, until } from "./helpers.js";

const key = { appId: "wx-app-1", kind: "access_token" } as const;
const T0 = Date.now();
const HOUR = 3_600_000;
const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => ({
  value,
  fetchedAt: T0,
  expiresAt: T0 + 2 * HOUR,
  ...extra,
});

describe("RedisTokenStore on one redis-server", () => {
  let server: RedisServer;
  const stores: RedisTokenStore[] = [];
  const admin = () => connect(server.url, "admin");

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function replica(keys: RedisKeys, logger = captureLogger().logger) {
    const store = await openStore(server.url, keys, `replica-${stores.length}`, logger);
    stores.push(store);
    return store;
  }

  it("delivers writes to another replica as the store holds them: versions only grow, the last arrives (200 writes)", async () => {
    const keys = freshKeys();
    const writer = await replica(keys);
    const reader = await replica(keys);
    const heard: CredentialUpdate[] = [];
    reader.subscribe((u) => heard.push(u));
    for (let v = 0; v < 200; v++) {
      const r = await writer.compareAndSet(key, v, 1, next(`value-${v + 1}`));
      expect(r.written).toBe(true);
    }
    await until(() => heard.at(-1)?.credential.version === 200, "version 200", 10_000);
    // Each notice makes the reader re-read the hash: a burst may arrive as its
    // latest state, never out of order and never as anything the store did not hold.
    const versions = heard.map((u) => u.credential.version);
    expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
    for (const u of heard)
      expect(u.credential).toEqual({
        ...next(`value-${u.credential.version}`),
        version: u.credential.version,
      });
  });

  it("keeps every key under the prefix, with no secret in any key name, until a day after expiry", async () => {
    const keys = freshKeys();
    const store = await replica(keys);
    const secret = "SECRET-token-value-7f3a";
    await store.compareAndSet(key, 0, 1, next(secret));
    await store.compareAndSet({ appId: "wx-app-2", kind: "jsapi_ticket" }, 0, 1, next(secret));
    const client = admin();
    try {
      const mine = (await scanAll(client)).filter((k) => k.startsWith(`${keys.prefix}:`));
      expect(mine.sort()).toEqual(
        [keys.credential(key), keys.credential({ appId: "wx-app-2", kind: "jsapi_ticket" })].sort(),
      );
      expect((await scanAll(client)).filter((k) => k.includes(secret))).toEqual([]);
      // Deleted 24 h after expiry: an expired credential can still be read for diagnosis.
      const ttl = await client.pttl(keys.credential(key));
      const expected = T0 + 2 * HOUR + 24 * HOUR - Date.now();
      expect(Math.abs(ttl - expected)).toBeLessThan(5000);
    } finally {
      client.disconnect();
    }
  });

  it("refuses the write of a fence holder that paused while a newer holder wrote", async () => {
    const keys = freshKeys();
    const a = await replica(keys);
    const b = await replica(keys);
    await a.compareAndSet(key, 0, 1, next("v1"));
    // Holder with fence 1 reads, then pauses (GC, lost network) past its lease.
    const readByOne = await a.get(key);
    // The lock passes to fence 2, which reads the same version and writes.
    const readByTwo = await b.get(key);
    expect(await b.compareAndSet(key, readByTwo?.version ?? 0, 2, next("from-2"))).toMatchObject({
      written: true,
      credential: { version: 2 },
    });
    // Holder 1 wakes up and writes what it fetched: refused, whatever version it read.
    expect(await a.compareAndSet(key, readByOne?.version ?? 0, 1, next("from-1"))).toEqual({
      written: false,
      reason: "fence",
      current: { ...next("from-2"), version: 2 },
    });
    expect(await a.compareAndSet(key, 2, 1, next("from-1"))).toMatchObject({ reason: "fence" });
    expect((await b.get(key))?.value).toBe("from-2");
  });

  it("refuses before Redis a record no reader would accept (1 ms over 7200 s, a fetch past the skew)", async () => {
    const keys = freshKeys();
    const log = captureLogger();
    const writer = await replica(keys, log.logger);
    const reader = await replica(keys, log.logger);
    const heard: number[] = [];
    reader.subscribe((u) => heard.push(u.credential.version));
    const now = Date.now();
    const long = next("too-long", { fetchedAt: now, expiresAt: now + 2 * HOUR + 1 });
    await expect(writer.compareAndSet(key, 0, 1, long)).rejects.toThrow(
      /^credential wx-app-1\/access_token claims to live 7200001 ms .*; not written$/,
    );
    await expect(writer.restore(key, { ...long, version: 1 })).rejects.toThrow(RangeError);
    const ahead = next("ahead", { fetchedAt: now + 61_000, expiresAt: now + 61_000 + HOUR });
    await expect(writer.compareAndSet(key, 0, 1, ahead)).rejects.toThrow(/in the future/);
    // Nothing was written, announced, refused on reading, or deleted.
    expect(await reader.get(key)).toBeUndefined();
    await writer.compareAndSet(key, 0, 1, next("fine"));
    await until(() => heard.length > 0, "the valid write");
    expect(heard).toEqual([1]);
    expect(log.text()).not.toContain("refused a stored credential");
  });

  it("keeps the same contract when the script is called directly", async () => {
    const keys = freshKeys();
    const client = admin();
    try {
      loadScripts(client);
      const hash = keys.credential(key);
      const call = (expected: number, fence: number, value: string, state = "", renewable = "") =>
        client.casCredential(
          hash,
          keys.updates,
          "wx-app-1/access_token",
          String(expected),
          String(fence),
          value,
          String(expected + 1),
          "1",
          "2",
          "",
          String(Date.now() + HOUR),
          state,
          renewable,
        );
      expect(await call(0, 2, "a", "st")).toEqual([
        1,
        [
          "value",
          "a",
          "version",
          "1",
          "fence",
          "2",
          "fetchedAt",
          "1",
          "expiresAt",
          "2",
          "state",
          "st",
        ],
      ]);
      expect(await call(1, 1, "b")).toEqual([-1, expect.arrayContaining(["value", "a"])]);
      expect(await call(0, 2, "c")).toEqual([0, expect.arrayContaining(["version", "1"])]);
      // The new version must be above the one read (a caller without ARGV[12]: no renewableUntil).
      expect(
        await client.casCredential(
          hash,
          keys.updates,
          "wx-app-1/access_token",
          "1",
          "2",
          "d",
          "1",
          "1",
          "2",
          "",
          String(HOUR),
          "",
        ),
      ).toEqual([0, expect.arrayContaining(["version", "1"])]);
      expect(await client.hget(hash, "value")).toBe("a");
      // An empty state argument removes the field.
      expect(await call(1, 2, "e")).toEqual([1, expect.not.arrayContaining(["state"])]);
      // renewableUntil is kept as given, and removed by a write without it.
      expect(await call(2, 2, "f", "", "99")).toEqual([
        1,
        expect.arrayContaining(["renewableUntil", "99"]),
      ]);
      expect(await call(3, 2, "g")).toEqual([1, expect.not.arrayContaining(["renewableUntil"])]);
    } finally {
      client.disconnect();
    }
  });

  it("ignores malformed update messages, logs them without their content, and keeps delivering", async () => {
    const keys = freshKeys();
    const log = captureLogger();
    const store = await replica(keys, log.logger);
    const heard: CredentialUpdate[] = [];
    store.subscribe((u) => heard.push(u));
    const client = admin();
    try {
      for (const junk of [
        "not json SECRET-in-junk",
        '{"id":"no-kind","fields":{"value":"SECRET-in-junk"}}',
        "[]",
      ])
        await client.publish(keys.updates, junk);
      // Well formed, but only a hint: the credential is re-read, and nothing is stored.
      await client.publish(
        keys.updates,
        JSON.stringify({
          id: "wx-app-1/access_token",
          version: "99",
          fields: { value: "SECRET-in-junk", version: "99", fetchedAt: "1", expiresAt: "2" },
        }),
      );
    } finally {
      client.disconnect();
    }
    await store.compareAndSet(key, 0, 1, next("good"));
    await until(() => heard.length === 1, "the good update");
    expect(heard[0]?.credential.value).toBe("good");
    expect(heard).toHaveLength(1);
    expect(log.messages().filter((m) => m.includes("malformed"))).toHaveLength(3);
    expect(log.text()).not.toContain("SECRET-in-junk");
  });

  it("never logs a value, and survives throwing listeners", async () => {
    const keys = freshKeys();
    const log = captureLogger();
    const store = await replica(keys, log.logger);
    const heard: number[] = [];
    store.subscribe(() => {
      throw new Error("listener bug");
    });
    store.onResync(() => {
      throw new Error("resync listener bug");
    });
    store.subscribe((u) => heard.push(u.credential.version));
    // One delivery at a time: a hint heard after the next write re-reads that write,
    // so two quick writes may be delivered as the second only.
    await store.compareAndSet(key, 0, 1, next("SECRET-value-1"));
    await until(() => heard.length === 1, "the first update");
    await store.compareAndSet(key, 1, 1, next("SECRET-value-2"));
    await until(() => heard.length === 2, "the second update");
    expect(heard).toEqual([1, 2]);
    expect(log.messages()).toContain("token store subscriber threw");
    expect(log.text()).not.toContain("SECRET-value");
  });

  it("rejects after close, and close quits both connections", async () => {
    const keys = freshKeys();
    const store = await replica(keys);
    const client = admin();
    try {
      const names = async () =>
        String(await client.client("LIST"))
          .split("\n")
          .filter((l) => l.includes(" name=replica-"));
      const before = await names();
      expect(before.some((l) => l.includes(":updates "))).toBe(true);
      expect(before).toHaveLength(2);
      await Promise.all([store.close(), store.close()]);
      await store.close();
      await expect(store.get(key)).rejects.toThrow(/closed/);
      await expect(store.compareAndSet(key, 0, 1, next("x"))).rejects.toThrow(/closed/);
      let after = before;
      for (let i = 0; i < 50 && after.length > 0; i++) after = await names();
      expect(after).toEqual([]);
    } finally {
      client.disconnect();
    }
  });
});

describe("RedisTokenStore through a Redis crash", () => {
  let server: RedisServer;
  const stores: RedisTokenStore[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server?.stop();
  });

  it("rejects promptly while Redis is down, then resubscribes, resyncs once, and delivers again", async () => {
    const keys = new RedisKeys(`crash-${Date.now()}`);
    const writer = await openStore(server.url, keys, "writer");
    const reader = await openStore(server.url, keys, "reader");
    stores.push(writer, reader);
    const heard: CredentialUpdate[] = [];
    let resyncs = 0;
    reader.subscribe((u) => heard.push(u));
    reader.onResync(() => resyncs++);
    await writer.compareAndSet(key, 0, 1, next("before"));
    await until(() => heard.length === 1, "the first update");

    await server.stop("SIGKILL");
    for (const attempt of [
      () => writer.get(key),
      () => writer.compareAndSet(key, 1, 1, next("during")),
    ]) {
      const started = Date.now();
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(2500);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err instanceof StoreUnavailableError).toBe(true);
      expect((err as Error).message).toMatch(/^Redis is unreachable/);
      expect((err as Error).message).not.toContain("during");
    }
    expect(resyncs).toBe(0);

    await server.start(); // same port, empty: nothing was persisted
    await until(() => resyncs === 1, "a resync after the restart", 10_000);
    // The writer's main connection may still be reconnecting: retry like a caller would.
    let written = false;
    for (let i = 0; i < 50 && !written; i++)
      written = await writer
        .compareAndSet(key, 0, 1, next("after"))
        .then((r) => r.written)
        .catch(() => false);
    expect(written).toBe(true);
    await until(() => heard.length === 2, "the update written after the restart");
    expect(heard[1]?.credential.value).toBe("after");
    expect(resyncs).toBe(1);
  });
});
