import { afterEach, expect, it } from "vitest";
import type { CredentialKey, NewCredential } from "../../src/core/credential.js";
import type { CredentialUpdate, TokenStore } from "../../src/core/ports/token-store.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { until } from "./redis/helpers.js";

/**
 * One behaviour suite, run against every TokenStore: what the memory store
 * does for a single node, the SQLite store must do durably and the Redis
 * store for replicas. Each store's test file calls `tokenStoreContract`
 * inside a describe of its own (redis/token-store-contract.test.ts: memory
 * and Redis; sqlite/token-store-contract.test.ts). Notifications may arrive
 * after `compareAndSet` resolves (Redis delivers them through pub/sub, to the
 * writer too), so tests wait for them rather than assume.
 */

const key = { appId: "a", kind: "access_token" } as const;
const other = { appId: "b", kind: "jsapi_ticket" } as const;
// Realistic times: the Redis store keeps a credential until a while after it expires.
const T0 = Date.UTC(2026, 0, 1, 4, 0, 0);
const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => ({
  value,
  fetchedAt: T0,
  expiresAt: T0 + 7_200_000,
  ...extra,
});

/** Two users' credentials of one per-user kind, and the account-level one of the same app. */
const alice: CredentialKey = { appId: "a", kind: "user_token", subject: "o_alice" };
const bob: CredentialKey = { appId: "a", kind: "user_token", subject: "o_bob" };
const accountLevel: CredentialKey = { appId: "a", kind: "user_token" };
let states = 0;
/** A refresh-token-shaped state nobody else writes; the suite-wide leak scan looks for it. */
const rt = (label: string): string => {
  const state = `rt_${label}_${process.pid}_${++states}_${Math.random().toString(36).slice(2)}`;
  recordLeakCandidate("refresh_token", state);
  return state;
};

/** Defines the suite's tests for stores made by `open` (each test opens its own, closed after it). */
export function tokenStoreContract(open: () => Promise<TokenStore>): void {
  const opened: TokenStore[] = [];
  async function store(): Promise<TokenStore> {
    const s = await open();
    opened.push(s);
    return s;
  }
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it("reads nothing for a credential never written", async () => {
    expect(await (await store()).get(key)).toBeUndefined();
  });

  it("writes version 1 when empty and the next version on a matching compare", async () => {
    const s = await store();
    const first = await s.compareAndSet(key, 0, 1, next("t1"));
    expect(first).toEqual({ written: true, credential: { ...next("t1"), version: 1 } });
    const second = await s.compareAndSet(key, 1, 1, next("t2"));
    expect(second).toMatchObject({ written: true, credential: { value: "t2", version: 2 } });
    expect(await s.get(key)).toEqual({ ...next("t2"), version: 2 });
    expect(await s.get(other)).toBeUndefined();
  });

  it("keeps previousValidUntil when given and drops it when a later write has none", async () => {
    const s = await store();
    await s.compareAndSet(key, 0, 1, next("t1", { previousValidUntil: T0 + 300_000 }));
    expect(await s.get(key)).toEqual({
      ...next("t1", { previousValidUntil: T0 + 300_000 }),
      version: 1,
    });
    await s.compareAndSet(key, 1, 1, next("t2"));
    expect(await s.get(key)).toEqual({ ...next("t2"), version: 2 });
  });

  it("refuses a write based on a stale version and reports what is stored", async () => {
    const s = await store();
    await s.compareAndSet(key, 0, 1, next("t1"));
    await s.compareAndSet(key, 1, 1, next("t2"));
    const stale = await s.compareAndSet(key, 1, 1, next("late"));
    expect(stale).toEqual({
      written: false,
      reason: "version",
      current: { ...next("t2"), version: 2 },
    });
    expect((await s.get(key))?.value).toBe("t2");
    // A writer that believes nothing is stored is refused too.
    expect(await s.compareAndSet(key, 0, 1, next("late"))).toMatchObject({
      written: false,
      reason: "version",
    });
  });

  it("refuses a write whose fence is below the highest fence written (a holder that lost its lease)", async () => {
    const s = await store();
    await s.compareAndSet(key, 0, 5, next("from-fence-5"));
    const late = await s.compareAndSet(key, 1, 4, next("from-fence-4"));
    expect(late).toMatchObject({
      written: false,
      reason: "fence",
      current: { value: "from-fence-5", version: 1 },
    });
    // The fence check comes first: a stale holder is told "fence" even with a stale version.
    expect(await s.compareAndSet(key, 0, 4, next("x"))).toMatchObject({ reason: "fence" });
    expect(await s.compareAndSet(key, 1, 5, next("same-holder-again"))).toMatchObject({
      written: true,
    });
    expect(await s.compareAndSet(key, 2, 6, next("next-holder"))).toMatchObject({
      written: true,
      credential: { version: 3 },
    });
    expect(await s.compareAndSet(key, 3, 5, next("previous-holder"))).toMatchObject({
      reason: "fence",
    });
  });

  it("keeps fences per credential", async () => {
    const s = await store();
    await s.compareAndSet(key, 0, 9, next("k"));
    expect(await s.compareAndSet(other, 0, 1, next("o"))).toMatchObject({ written: true });
  });

  it("restores a credential over nothing, resetting the fence, and keeps the same value's higher version", async () => {
    const s = await store();
    const held = { ...next("held"), version: 7 };
    expect(await s.restore(key, held)).toEqual({ written: true, credential: held });
    expect(await s.restore(key, { ...held, version: 6 })).toMatchObject({
      written: false,
      current: { value: "held", version: 7 },
    });
    expect(await s.restore(key, { ...held, version: 9 })).toEqual({
      written: true,
      credential: { ...held, version: 9 },
    });
    // A lock holder after a store restart starts from fence 1 again, and can write.
    expect(await s.compareAndSet(key, 9, 1, next("after-restart"))).toMatchObject({
      written: true,
      credential: { version: 10 },
    });
  });

  it("restore keeps whichever value WeChat issued last, numbered above both", async () => {
    const s = await store();
    // The store restarted empty; a replica fetched anew (version 1) ...
    await s.compareAndSet(key, 0, 1, next("fresh", { fetchedAt: T0 + 60_000 }));
    // ... and another hands back an older value at a higher version: the fresh one stays, renumbered.
    expect(await s.restore(key, { ...next("old"), version: 5 })).toEqual({
      written: false,
      reason: "version",
      current: { ...next("fresh", { fetchedAt: T0 + 60_000 }), version: 6 },
    });
    // A value fetched later still is put back above what is stored, fields and all.
    const later = {
      ...next("later", { fetchedAt: T0 + 120_000, previousValidUntil: T0 + 1 }),
      version: 2,
    };
    expect(await s.restore(key, later)).toEqual({
      written: true,
      credential: { ...later, version: 7 },
    });
    expect(await s.get(key)).toEqual({ ...later, version: 7 });
    // Same fetch time: the higher version (written later), then the store.
    expect(
      await s.restore(key, { ...next("tie-higher", { fetchedAt: T0 + 120_000 }), version: 8 }),
    ).toMatchObject({ written: true, credential: { value: "tie-higher", version: 8 } });
    expect(
      await s.restore(key, { ...next("tie", { fetchedAt: T0 + 120_000 }), version: 3 }),
    ).toMatchObject({ written: false, current: { value: "tie-higher", version: 8 } });
  });

  it("a write after a store restart starts above the version its writer remembers", async () => {
    const s = await store();
    expect(await s.compareAndSet(key, 0, 1, next("fresh"), 6)).toEqual({
      written: true,
      credential: { ...next("fresh"), version: 6 },
    });
    expect(await s.compareAndSet(key, 6, 1, next("then"), 2)).toMatchObject({
      credential: { version: 7 },
    });
  });

  it("notifies subscribers of every write, and a throwing subscriber does not break others", async () => {
    const s = await store();
    const seen: CredentialUpdate[] = [];
    const all: CredentialUpdate[] = [];
    s.subscribe(() => {
      throw new Error("broken subscriber");
    });
    s.subscribe((u) => all.push(u));
    const unsubscribe = s.subscribe((u) => seen.push(u));
    await s.compareAndSet(key, 0, 1, next("t1"));
    await until(() => all.length === 1, "the first update");
    unsubscribe();
    await s.compareAndSet(key, 1, 1, next("t2"));
    await s.restore(other, { ...next("r"), version: 3 });
    await until(() => all.length === 3, "the later updates");
    expect(seen.map((u) => [u.key.appId, u.credential.version])).toEqual([["a", 1]]);
    expect(all.map((u) => [u.key, u.credential])).toEqual([
      [key, { ...next("t1"), version: 1 }],
      [key, { ...next("t2"), version: 2 }],
      [other, { ...next("r"), version: 3 }],
    ]);
  });

  it("does not notify refused writes", async () => {
    const s = await store();
    const all: CredentialUpdate[] = [];
    s.subscribe((u) => all.push(u));
    await s.compareAndSet(key, 0, 2, next("t1"));
    await s.compareAndSet(key, 0, 2, next("stale-version"));
    await s.compareAndSet(key, 1, 1, next("stale-fence"));
    await s.restore(key, { ...next("t1"), version: 1 });
    await s.compareAndSet(other, 0, 1, next("marker"));
    await until(() => all.length === 2, "the marker write");
    expect(all.map((u) => u.credential.value)).toEqual(["t1", "marker"]);
  });

  it("keeps a kind's state with its credential: written, read, notified", async () => {
    const s = await store();
    const heard: CredentialUpdate[] = [];
    s.subscribe((u) => heard.push(u));
    const state = rt("first");
    expect(await s.compareAndSet(key, 0, 1, next("t1", { state }))).toEqual({
      written: true,
      credential: { ...next("t1", { state }), version: 1 },
    });
    expect(await s.get(key)).toEqual({ ...next("t1", { state }), version: 1 });
    // A write with a new state replaces it; a refused write reports the stored one.
    const newer = rt("newer");
    await s.compareAndSet(key, 1, 1, next("t2", { state: newer }));
    expect(await s.compareAndSet(key, 1, 1, next("late", { state: rt("late") }))).toEqual({
      written: false,
      reason: "version",
      current: { ...next("t2", { state: newer }), version: 2 },
    });
    await until(() => heard.length === 2, "two updates");
    expect(heard.map((u) => u.credential.state)).toEqual([state, newer]);
  });

  it("a write without state removes the stored one (no older state left behind); an empty state is none", async () => {
    const s = await store();
    await s.compareAndSet(key, 0, 1, next("t1", { state: rt("dropped") }));
    expect(await s.compareAndSet(key, 1, 1, next("t2"))).toEqual({
      written: true,
      credential: { ...next("t2"), version: 2 },
    });
    expect(await s.get(key)).toEqual({ ...next("t2"), version: 2 });
    await s.compareAndSet(key, 2, 1, next("t3", { state: "" }));
    expect(await s.get(key)).toEqual({ ...next("t3"), version: 3 });
  });

  it("restore puts the state back with the record, and keeps the stored one's when that wins", async () => {
    const s = await store();
    const held = { ...next("held", { state: rt("held") }), version: 4 };
    expect(await s.restore(key, held)).toEqual({ written: true, credential: held });
    expect(await s.get(key)).toEqual(held);
    // Put whole: a later-issued record without state leaves none behind.
    const later = { ...next("later", { fetchedAt: T0 + 60_000 }), version: 5 };
    expect(await s.restore(key, later)).toEqual({ written: true, credential: later });
    expect(await s.get(key)).toEqual(later);
    // The stored record wins over an older one: renumbered with its own state.
    const kept = rt("kept");
    await s.compareAndSet(key, 5, 1, next("kept", { fetchedAt: T0 + 120_000, state: kept }));
    expect(await s.restore(key, { ...next("old", { state: rt("old") }), version: 9 })).toEqual({
      written: false,
      reason: "version",
      current: { ...next("kept", { fetchedAt: T0 + 120_000, state: kept }), version: 10 },
    });
  });

  it("keeps subject credentials apart from each other and from the account-level one", async () => {
    const s = await store();
    const heard: CredentialUpdate[] = [];
    s.subscribe((u) => heard.push(u));
    const aliceState = rt("alice");
    await s.compareAndSet(alice, 0, 3, next("for-alice", { state: aliceState }));
    expect(await s.get(bob)).toBeUndefined();
    expect(await s.get(accountLevel)).toBeUndefined();
    // Versions and fences are per subject: bob starts at 1 with a lower fence.
    expect(await s.compareAndSet(bob, 0, 1, next("for-bob"))).toEqual({
      written: true,
      credential: { ...next("for-bob"), version: 1 },
    });
    await s.compareAndSet(accountLevel, 0, 1, next("for-the-app"));
    expect(await s.get(alice)).toEqual({ ...next("for-alice", { state: aliceState }), version: 1 });
    expect((await s.get(bob))?.value).toBe("for-bob");
    expect((await s.get(accountLevel))?.value).toBe("for-the-app");
    await until(() => heard.length === 3, "three updates");
    // Each notice names its own key, subject included.
    expect(heard.map((u) => [u.key, u.credential.value])).toEqual([
      [alice, "for-alice"],
      [bob, "for-bob"],
      [accountLevel, "for-the-app"],
    ]);
  });

  it("keeps renewableUntil with the record: written, read, restored, dropped by a write without one", async () => {
    const s = await store();
    const renewableUntil = T0 + 30 * 24 * 3_600_000;
    const state = rt("renewable");
    expect(await s.compareAndSet(alice, 0, 1, next("t1", { state, renewableUntil }))).toEqual({
      written: true,
      credential: { ...next("t1", { state, renewableUntil }), version: 1 },
    });
    expect(await s.get(alice)).toEqual({ ...next("t1", { state, renewableUntil }), version: 1 });
    await s.compareAndSet(alice, 1, 1, next("t2"));
    expect(await s.get(alice)).toEqual({ ...next("t2"), version: 2 });
    const held = { ...next("held", { fetchedAt: T0 + 1, renewableUntil }), version: 3 };
    expect(await s.restore(alice, held)).toEqual({ written: true, credential: held });
    expect(await s.get(alice)).toEqual(held);
  });

  it("deletes only the version read, and tells onDelete listeners (not subscribers)", async () => {
    const s = await store();
    const deleted: CredentialKey[] = [];
    const updates: CredentialUpdate[] = [];
    s.onDelete((k) => deleted.push(k));
    s.subscribe((u) => updates.push(u));
    expect(await s.delete(alice, 1)).toBe(false); // nothing stored
    await s.compareAndSet(alice, 0, 1, next("a1", { state: rt("deleted") }));
    await s.compareAndSet(alice, 1, 1, next("a2", { state: rt("deleted-2") }));
    await s.compareAndSet(bob, 0, 1, next("b1"));
    // A grant written again meanwhile stays.
    expect(await s.delete(alice, 1)).toBe(false);
    expect((await s.get(alice))?.value).toBe("a2");
    expect(await s.delete(alice, 2)).toBe(true);
    expect(await s.get(alice)).toBeUndefined();
    expect(await s.delete(alice, 2)).toBe(false);
    expect((await s.get(bob))?.value).toBe("b1");
    await s.compareAndSet(accountLevel, 0, 1, next("marker"));
    await until(
      () => deleted.length === 1 && updates.at(-1)?.credential.value === "marker",
      "the delete and the marker",
    );
    expect(deleted).toEqual([alice]);
    // Quick writes may be heard as the latest only (Redis re-reads); a delete is no update.
    const heard = updates.map((u) => u.credential.value);
    expect(heard.filter((v) => !["a1", "a2", "b1"].includes(v))).toEqual(["marker"]);
    expect(heard).toContain("b1");
  });

  it("numbers a credential written after a delete above the deleted version, and keeps the fence", async () => {
    const s = await store();
    for (let v = 0; v < 3; v++) await s.compareAndSet(alice, v, 5, next(`a${v + 1}`));
    expect(await s.delete(alice, 3)).toBe(true);
    // A lock holder that started before the delete (a lower fence) cannot write it back.
    expect(await s.compareAndSet(alice, 0, 4, next("stale-holder"))).toEqual({
      written: false,
      reason: "fence",
      current: undefined,
    });
    // Nothing is stored: a writer that read version 3 is refused.
    expect(await s.compareAndSet(alice, 3, 6, next("x"))).toEqual({
      written: false,
      reason: "version",
      current: undefined,
    });
    expect(await s.compareAndSet(alice, 0, 6, next("again"))).toEqual({
      written: true,
      credential: { ...next("again"), version: 4 },
    });
    // A writer remembering a higher version still numbers above it.
    expect(await s.delete(alice, 4)).toBe(true);
    expect(await s.compareAndSet(alice, 0, 6, next("then"), 9)).toMatchObject({
      written: true,
      credential: { version: 9 },
    });
  });

  it("does not restore a deleted credential from a replica that missed the delete", async () => {
    const s = await store();
    const state = rt("forgotten");
    await s.compareAndSet(alice, 0, 1, next("g1", { state }));
    await s.compareAndSet(alice, 1, 1, next("g2", { state }));
    expect(await s.delete(alice, 2)).toBe(true);
    for (const version of [1, 2])
      expect(await s.restore(alice, { ...next(`g${version}`, { state }), version })).toEqual({
        written: false,
        reason: "version",
        current: undefined,
      });
    // Even one WeChat issued later: the version says it predates the delete.
    expect(
      await s.restore(alice, { ...next("g2", { fetchedAt: T0 + 60_000, state }), version: 2 }),
    ).toMatchObject({ written: false, current: undefined });
    expect(await s.get(alice)).toBeUndefined();
    // A credential written after the delete (above its version) is put back if the store lost it.
    const later = { ...next("later", { fetchedAt: T0 + 60_000 }), version: 3 };
    expect(await s.restore(alice, later)).toEqual({ written: true, credential: later });
  });

  it("lists the credentials of one kind, subjects included, and not deleted ones", async () => {
    const s = await store();
    const carol: CredentialKey = { appId: "b", kind: "user_token", subject: "o_carol" };
    // Another kind whose subject is spelled like the kind listed.
    const lookalike: CredentialKey = { appId: "a", kind: "other_kind", subject: "user_token" };
    const aliceState = rt("listed");
    await s.compareAndSet(alice, 0, 1, next("for-alice", { state: aliceState }));
    await s.compareAndSet(bob, 0, 1, next("for-bob"));
    await s.compareAndSet(accountLevel, 0, 1, next("for-the-app"));
    await s.compareAndSet(carol, 0, 1, next("for-carol"));
    await s.delete(carol, 1);
    await s.compareAndSet(key, 0, 1, next("a-token"));
    await s.compareAndSet(lookalike, 0, 1, next("lookalike"));
    const listed: CredentialUpdate[] = [];
    for await (const entry of s.entries("user_token")) listed.push(entry);
    listed.sort((x, y) => String(x.key.subject).localeCompare(String(y.key.subject)));
    expect(listed).toEqual([
      { key: alice, credential: { ...next("for-alice", { state: aliceState }), version: 1 } },
      { key: bob, credential: { ...next("for-bob"), version: 1 } },
      { key: accountLevel, credential: { ...next("for-the-app"), version: 1 } },
    ]);
    const none: CredentialUpdate[] = [];
    for await (const entry of s.entries("no_such_kind")) none.push(entry);
    expect(none).toEqual([]);
  });

  it("says whether it keeps what it holds across a restart", async () => {
    const durability = await (await store()).durability();
    expect(typeof durability.durable).toBe("boolean");
    expect(durability.detail).not.toBe("");
  });

  it("closes idempotently", async () => {
    const s = await store();
    await Promise.all([s.close(), s.close()]);
    await s.close();
  });
}
