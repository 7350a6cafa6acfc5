import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { CredentialKey } from "../../../src/core/credential.js";
import { silentLogger } from "../../../src/shared/logger.js";
import { ValueDecryptionError } from "../../../src/store/sealing/value-cipher.js";
import { SqliteFile } from "../../../src/store/sqlite/sqlite-file.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { captureLogger } from "../redis/helpers.js";
import {
  DAY,
  freshCipher,
  HOUR,
  next,
  rawBytes,
  secretLike,
  sqliteSandbox,
  T0,
} from "./helpers.js";

const token = { appId: "wx1", kind: "access_token" } as const;
const alice: CredentialKey = { appId: "wx1", kind: "user_access_token", subject: "o_alice" };
const bob: CredentialKey = { appId: "wx1", kind: "user_access_token", subject: "o_bob" };
const sandbox = sqliteSandbox();

describe("SqliteTokenStore across a restart", () => {
  it("reopens the file with the same versions, values, states, times and tombstones", async () => {
    const cipher = freshCipher();
    const first = sandbox.open({ cipher });
    const grant = next(secretLike("user_at", "access_token"), {
      state: secretLike("user_rt", "refresh_token"),
      renewableUntil: T0 + 30 * DAY,
    });
    const appToken = next("app-token", { previousValidUntil: T0 + 300_000 });
    await first.store.compareAndSet(alice, 0, 1, grant, 6);
    await first.store.compareAndSet(token, 0, 1, next("old"));
    await first.store.compareAndSet(token, 1, 1, appToken);
    await first.store.compareAndSet(bob, 0, 1, next("bob", { state: "rt-bob" }));
    expect(await first.store.delete(bob, 1)).toBe(true);
    await first.close();

    const second = sandbox.open({ cipher });
    expect(await second.store.get(alice)).toEqual({ ...grant, version: 6 });
    expect(await second.store.get(token)).toEqual({ ...appToken, version: 2 });
    expect(await second.store.get(bob)).toBeUndefined();
    // Versions go on from what the file holds; fences start over with the new process's lock.
    expect(await second.store.compareAndSet(token, 2, 1, next("after"))).toMatchObject({
      written: true,
      credential: { version: 3 },
    });
    // The tombstone survived: the deleted grant is not restored, and a new one is numbered above it.
    expect(await second.store.restore(bob, { ...next("bob"), version: 1 })).toMatchObject({
      written: false,
      current: undefined,
    });
    expect(await second.store.compareAndSet(bob, 0, 1, next("bob-again"))).toMatchObject({
      written: true,
      credential: { version: 2 },
    });
  });

  it("says it is durable, naming the file, the journal mode and the sync level", async () => {
    const { store } = sandbox.open();
    const durability = await store.durability();
    expect(durability.durable).toBe(true);
    expect(durability.detail).toContain(join(sandbox.dir(), "broker.db"));
    expect(durability.detail).toContain("journal_mode=wal");
    expect(durability.detail).toContain("synchronous=FULL");
  });
});

describe("SqliteTokenStore at rest", () => {
  it("keeps no token or refresh token readable in the file or its log", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const stores = sandbox.open({ cipher: freshCipher() });
    const value = secretLike("at", "access_token");
    const state = secretLike("rt", "refresh_token");
    await stores.store.compareAndSet(alice, 0, 1, next(value, { state, renewableUntil: T0 + DAY }));
    await stores.exchangeLedger.claim("x1", "client-a", 60_000);
    await stores.exchangeLedger.settle("x1", "client-a", `{"token":"${value}"}`, 300_000);
    const written = rawBytes(path);
    expect(written.length).toBeGreaterThan(0);
    expect(written.includes(value)).toBe(false);
    expect(written.includes(state)).toBe(false);
    await stores.close();
    const checkpointed = rawBytes(path);
    expect(checkpointed.includes(value)).toBe(false);
    expect(checkpointed.includes(state)).toBe(false);
  });

  it("without keys stores them as they are, and says so at open", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const capture = captureLogger();
    const stores = sandbox.open({ logger: capture.logger });
    expect(capture.messages().join("\n")).toMatch(/stored in the SQLite file unencrypted/);
    const value = secretLike("plain_at", "access_token");
    await stores.store.compareAndSet(token, 0, 1, next(value));
    // The search above would have found it: the file holds it in the clear.
    expect(rawBytes(path).includes(value)).toBe(true);
  });

  it("a sealed value moved to another row, or a row extended, does not open", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const cipher = freshCipher();
    const stores = sandbox.open({ cipher });
    await stores.store.compareAndSet(
      alice,
      0,
      1,
      next("alice-token", { state: "alice-rt", renewableUntil: T0 + DAY }),
    );
    await stores.store.compareAndSet(bob, 0, 1, next("bob-token", { renewableUntil: T0 + DAY }));
    await stores.close();
    const raw = new Database(path);
    raw
      .prepare(
        "UPDATE credentials SET value = (SELECT value FROM credentials WHERE id = ?) WHERE id = ?",
      )
      .run("wx1/user_access_token/o_alice", "wx1/user_access_token/o_bob");
    raw
      .prepare("UPDATE credentials SET renewable_until = renewable_until + ? WHERE id = ?")
      .run(30 * DAY, "wx1/user_access_token/o_alice");
    raw.close();
    const reopened = sandbox.open({ cipher });
    await expect(reopened.store.get(bob)).rejects.toThrow(ValueDecryptionError);
    await expect(reopened.store.get(alice)).rejects.toThrow(/authentication failed/);
  });

  it("refuses a row stored unencrypted once keys are set, except inside the migration window", async () => {
    const first = sandbox.open();
    await first.store.compareAndSet(token, 0, 1, next("plain"));
    await first.store.compareAndSet(alice, 0, 1, next("plain-user", { state: "plain-rt" }));
    await first.close();
    const cipher = freshCipher();
    const migrating = sandbox.open({ cipher, acceptPlaintextUntil: T0 + HOUR });
    expect(await migrating.store.get(token)).toMatchObject({ value: "plain", version: 1 });
    // Its next write seals it.
    await migrating.store.compareAndSet(token, 1, 1, next("sealed-now"));
    await migrating.close();
    const strict = sandbox.open({ cipher });
    expect(await strict.store.get(token)).toMatchObject({ value: "sealed-now", version: 2 });
    // Refused; a grant is kept aside (never deleted on read), out of the new grant's way.
    expect(await strict.store.get(alice)).toBeUndefined();
    expect(await strict.store.compareAndSet(alice, 0, 1, next("fresh"))).toMatchObject({
      written: true,
    });
    await strict.close();
    const Database = (await import("better-sqlite3")).default;
    const db = new Database(join(sandbox.dir(), "broker.db"), { readonly: true });
    const ids = (db.prepare("SELECT id FROM credentials").all() as Array<{ id: string }>).map(
      (r) => r.id,
    );
    db.close();
    expect(ids).toContain("wx1/user_access_token/o_alice#refused");
  });
});

describe("SqliteTokenStore retention", () => {
  it("purges a row once max(expiresAt, renewableUntil) plus the retention has passed, tombstones too", async () => {
    const clock = new FakeClock(T0);
    const { store } = sandbox.open({ clock, retentionMs: HOUR });
    await store.compareAndSet(token, 0, 1, next("app"));
    await store.compareAndSet(alice, 0, 1, next("user", { renewableUntil: T0 + 3 * DAY }));
    await store.compareAndSet(bob, 0, 1, next("bob"));
    await store.compareAndSet(bob, 1, 1, next("bob-2"));
    expect(await store.delete(bob, 2)).toBe(true);
    await clock.advance(3 * HOUR - 1); // expiresAt + retention is T0 + 3 h
    expect((await store.get(token))?.value).toBe("app");
    expect(await store.restore(bob, { ...next("bob-2"), version: 2 })).toMatchObject({
      written: false,
    });
    await clock.advance(20 * 60_000); // the next purges run
    expect(await store.get(token)).toBeUndefined();
    // The grant outlives its access token until it can no longer be renewed.
    expect((await store.get(alice))?.value).toBe("user");
    // The tombstone went with the retention of what it buried: numbering starts over.
    expect(await store.compareAndSet(bob, 0, 1, next("bob-new"))).toMatchObject({
      credential: { version: 1 },
    });
    await clock.advance(3 * DAY);
    expect(await store.get(alice)).toBeUndefined();
  });
});

describe("SqliteFile", () => {
  it("refuses a second opener of the same file until the first closes", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const first = sandbox.open({ path });
    expect(() => SqliteFile.open(path, silentLogger())).toThrow(/in use by another process/);
    await first.close();
    SqliteFile.open(path, silentLogger()).close();
  });

  it("refuses a database of another application, and one written by a later release", () => {
    const foreign = join(sandbox.dir(), "foreign.db");
    const db = new Database(foreign);
    db.exec("CREATE TABLE t (x)");
    db.close();
    expect(() => SqliteFile.open(foreign, silentLogger())).toThrow(/another application/);
    const later = join(sandbox.dir(), "later.db");
    SqliteFile.open(later, silentLogger()).close();
    const raw = new Database(later);
    raw.pragma("user_version = 99");
    raw.close();
    expect(() => SqliteFile.open(later, silentLogger())).toThrow(/later release/);
  });

  it("creates its folder and a file only its owner can read", () => {
    const path = join(sandbox.dir(), "nested", "data", "broker.db");
    const file = SqliteFile.open(path, silentLogger());
    file.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe("SqliteTokenStore entries", () => {
  it("lists every credential of a kind page by page, while writes go on", async () => {
    const { store } = sandbox.open();
    const users = 1003;
    for (let i = 0; i < users; i++)
      await store.compareAndSet({ ...alice, subject: `o_${i}` }, 0, 1, next(`t${i}`));
    await store.compareAndSet(token, 0, 1, next("app"));
    const seen = new Set<string>();
    for await (const { key, credential } of store.entries("user_access_token")) {
      seen.add(`${key.subject}=${credential.value}`);
      // The connection serves other calls between pages.
      if (seen.size % 400 === 0) await store.compareAndSet(token, seen.size / 400, 1, next("app"));
    }
    expect(seen.size).toBe(users);
    expect(seen.has("o_1002=t1002")).toBe(true);
    expect((await store.get(token))?.version).toBe(3);
  });
});
