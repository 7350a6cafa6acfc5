import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CredentialKey, NewCredential } from "../../../src/core/credential.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";
import { RedisExchangeLedger } from "../../../src/store/redis/redis-exchange-ledger.js";
import type { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";
import { ValueCipher } from "../../../src/store/redis/value-cipher.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { connect, openStore, until } from "./helpers.js";

/**
 * Grants, exports, the persistence check and the exchange ledger work as the
 * README's least-privilege Redis user, which may not run CONFIG: the
 * persistence check then reads INFO and says what it could not verify.
 */

const line = /^ACL SETUSER token-broker .*$/m.exec(readFileSync("README.md", "utf8"))?.[0] ?? "";
const commands = line.split(" ").filter((w) => /^[+-]@?[a-z|]+$/.test(w));
const user = [
  "--user",
  ..."token-broker on >pw resetkeys ~t-* resetchannels &t-*".split(" "),
  ...commands,
];
const alice: CredentialKey = { appId: "wx-acl", kind: "user_access_token", subject: "o_alice" };
const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => {
  const now = Date.now();
  return { value, fetchedAt: now, expiresAt: now + 7_200_000, ...extra };
};
/** The user's keys and channel start with "t-". */
const keysOfUser = () => new RedisKeys(`t-${randomUUID().slice(0, 8)}`);
const urlOf = (server: RedisServer) => `redis://token-broker:pw@127.0.0.1:${server.port}`;

let aof: RedisServer;
let bare: RedisServer;
const stores: RedisTokenStore[] = [];
beforeAll(async () => {
  [aof, bare] = await Promise.all([
    startRedisServer([...user, "--appendonly", "yes"]),
    startRedisServer(user),
  ]);
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all([aof?.stop(), bare?.stop()]);
});

async function store(server: RedisServer, keys: RedisKeys, name: string) {
  const s = await openStore(urlOf(server), keys, name);
  stores.push(s);
  return s;
}

describe("as the README's Redis user", () => {
  it("the command list has SCAN and no CONFIG", () => {
    expect(commands).toContain("+scan");
    expect(commands.some((c) => c.startsWith("+config"))).toBe(false);
  });

  it("deletes, hears deletes, renumbers, refuses restores and lists a kind", async () => {
    const keys = keysOfUser();
    const a = await store(aof, keys, "acl-a");
    const b = await store(aof, keys, "acl-b");
    const deleted: CredentialKey[] = [];
    b.onDelete((k) => deleted.push(k));
    const renewableUntil = Date.now() + 30 * 86_400_000;
    await a.compareAndSet(alice, 0, 1, next("a1", { state: "rt_acl_state", renewableUntil }));
    expect(await a.delete(alice, 1)).toBe(true);
    await until(() => deleted.length === 1, "the delete on the other replica");
    expect(await a.restore(alice, { ...next("a1"), version: 1 })).toMatchObject({
      written: false,
    });
    expect(await b.compareAndSet(alice, 0, 1, next("a2", { renewableUntil }))).toMatchObject({
      written: true,
      credential: { version: 2, renewableUntil },
    });
    const listed = [];
    for await (const e of a.entries("user_access_token")) listed.push(e.credential.value);
    expect(listed).toEqual(["a2"]);
  });

  it("durability: AOF is seen through INFO; CONFIG's refusal is named", async () => {
    const d = await (await store(aof, keysOfUser(), "acl-aof")).durability();
    expect(d.durable).toBe(true);
    expect(d.detail).toMatch(/AOF is on \(from INFO persistence.*CONFIG GET refused: NOPERM/);
  });

  it("durability: without AOF, RDB save points could not be verified, so not durable", async () => {
    const d = await (await store(bare, keysOfUser(), "acl-bare")).durability();
    expect(d.durable).toBe(false);
    expect(d.detail).toMatch(
      /AOF is off, and whether RDB save points are set could not be verified/,
    );
  });

  it("claims, settles and releases code exchanges", async () => {
    const keys = keysOfUser();
    const cipher = new ValueCipher([{ id: "k1", key: randomBytes(32) }]);
    const client = connect(urlOf(aof), "acl-ledger");
    try {
      const ledger = new RedisExchangeLedger({ client, keys, cipher });
      const id = randomBytes(32).toString("base64url");
      const other = randomBytes(32).toString("base64url");
      expect(await ledger.claim(id, "client-1", 10_000)).toEqual({ state: "claimed" });
      await ledger.settle(id, "client-1", "{}", 60_000);
      expect(await ledger.claim(id, "client-2", 10_000)).toMatchObject({ state: "settled" });
      expect(await ledger.claim(other, "client-1", 10_000)).toEqual({ state: "claimed" });
      await ledger.release(other, "client-1");
      expect(await ledger.claim(other, "client-2", 10_000)).toEqual({ state: "claimed" });
    } finally {
      client.disconnect();
    }
  });
});
