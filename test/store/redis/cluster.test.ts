import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewCredential } from "../../../src/core/credential.js";
import type { CredentialUpdate } from "../../../src/core/ports/token-store.js";
import type { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";
import { type ClusterSetup, startClusterSetup } from "../../helpers/redis-topologies.js";
import { freshKeys, openStore, until } from "./helpers.js";

// One reading of the clock: two could straddle a millisecond, and a record
// living 7_200_001 ms is over what WeChat issues (the store refuses it).
const next = (value: string): NewCredential => {
  const now = Date.now();
  return { value, fetchedAt: now, expiresAt: now + 7_200_000 };
};

describe("RedisTokenStore on a three-master Redis Cluster", () => {
  let setup: ClusterSetup;
  const stores: RedisTokenStore[] = [];
  const nodes: Redis[] = [];

  beforeAll(async () => {
    setup = await startClusterSetup();
    for (const s of setup.servers) {
      const node = new Redis({ port: s.port, host: "127.0.0.1" });
      node.on("error", () => {}); // one node is killed on purpose
      nodes.push(node);
    }
  });
  afterAll(async () => {
    for (const n of nodes) n.disconnect();
    await Promise.all(stores.map((s) => s.close()));
    await setup?.close();
  });

  it("spreads credentials over every node and delivers each write to a replica subscribed on one node", async () => {
    const keys = freshKeys();
    const writer = await openStore(setup.url, keys, "cluster-writer");
    const reader = await openStore(setup.url, keys, "cluster-reader");
    stores.push(writer, reader);
    const heard: CredentialUpdate[] = [];
    reader.subscribe((u) => heard.push(u));

    const ids = Array.from({ length: 30 }, (_, i) => ({
      appId: `app-${i}`,
      kind: "access_token" as const,
    }));
    for (const k of ids) {
      expect(await writer.compareAndSet(k, 0, 1, next(`v-${k.appId}`))).toMatchObject({
        written: true,
      });
      expect(await writer.compareAndSet(k, 1, 1, next(`w-${k.appId}`))).toMatchObject({
        written: true,
      });
    }
    for (const k of ids)
      expect(await reader.get(k)).toMatchObject({ value: `w-${k.appId}`, version: 2 });

    // Every node holds some of the credentials (each key's hash tag picks its slot).
    const perNode = await Promise.all(nodes.map((n) => n.dbsize()));
    expect(perNode.every((n) => n > 0)).toBe(true);
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(ids.length);

    // The reader listens on exactly one node, yet hears the writes made on all three.
    const listening = await Promise.all(
      nodes.map(async (n) =>
        String(await n.client("LIST")).includes("name=cluster-reader:updates "),
      ),
    );
    expect(listening.filter(Boolean)).toHaveLength(1);
    const versionsOf = (appId: string) =>
      heard.filter((u) => u.key.appId === appId).map((u) => u.credential.version);
    await until(
      () => ids.every((k) => versionsOf(k.appId).at(-1) === 2),
      "every credential's version 2",
      10_000,
    );
    // Each notice is a re-read of the hash: two quick writes may arrive as the second only.
    for (const k of ids) expect([[1, 2], [2]]).toContainEqual(versionsOf(k.appId));
  });

  it("lists a kind's credentials from every master, and asks every master about persistence", async () => {
    const keys = freshKeys();
    const store = await openStore(setup.url, keys, "cluster-lister");
    stores.push(store);
    const users = Array.from({ length: 30 }, (_, i) => ({
      appId: "app-users",
      kind: "user_access_token" as const,
      subject: `o_${i}`,
    }));
    for (const k of users) await store.compareAndSet(k, 0, 1, next(`u-${k.subject}`));
    const [gone, ...kept] = users;
    if (gone) expect(await store.delete(gone, 1)).toBe(true);
    const listed: string[] = [];
    for await (const e of store.entries("user_access_token")) listed.push(e.credential.value);
    expect(listed.sort()).toEqual(kept.map((k) => `u-${k.subject}`).sort());
    const d = await store.durability();
    expect(d.durable).toBe(false);
    // One verdict per master, each naming its node.
    expect(d.detail.match(/127\.0\.0\.1:\d+: Redis persists nothing/g)).toHaveLength(3);
  });

  it("moves the subscriber to another node when its node dies, resyncs once, and hears writes again", async () => {
    const keys = freshKeys();
    const writer = await openStore(setup.url, keys, "cluster-writer-2");
    const reader = await openStore(setup.url, keys, "cluster-reader-2");
    stores.push(writer, reader);
    const heard: CredentialUpdate[] = [];
    let resyncs = 0;
    reader.subscribe((u) => heard.push(u));
    reader.onResync(() => resyncs++);

    const lists = await Promise.all(nodes.map((n) => n.client("LIST")));
    const at = lists.findIndex((l) => String(l).includes("name=cluster-reader-2:updates "));
    const victim = setup.servers[at];
    if (!victim) throw new Error("the reader's subscriber is on no node");
    await victim.stop("SIGKILL");
    await until(() => resyncs === 1, "the subscriber to move to another node", 10_000);

    // The node comes back with its cluster config (same id and slots).
    await victim.start();
    const ids = Array.from({ length: 12 }, (_, i) => ({
      appId: `moved-${i}`,
      kind: "access_token" as const,
    }));
    const deadline = Date.now() + 15_000;
    for (const k of ids) {
      let written = false;
      while (!written && Date.now() < deadline)
        written = await writer
          .compareAndSet(k, 0, 1, next(`v-${k.appId}`))
          .then((r) => r.written)
          .catch(() => false);
      expect(written).toBe(true);
    }
    await until(() => heard.length === ids.length, "the writes after the move", 10_000);
    expect(resyncs).toBe(1);
  });
});
