import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExchangeLedger } from "../../../src/core/ports/exchange-ledger.js";
import { systemClock } from "../../../src/shared/clock.js";
import { LocalExchangeLedger } from "../../../src/store/memory/local-exchange-ledger.js";
import type { RedisClient } from "../../../src/store/redis/connection.js";
import type { RedisKeys } from "../../../src/store/redis/keys.js";
import { RedisExchangeLedger } from "../../../src/store/redis/redis-exchange-ledger.js";
import { ValueCipher, ValueDecryptionError } from "../../../src/store/redis/value-cipher.js";
import { recordLeakCandidate } from "../../helpers/leak-recorder.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { connect, delay, freshKeys } from "./helpers.js";

/**
 * The exchange ledger: a code reaches WeChat once across replicas. The
 * semantics are shared with the single-node ledger; the Redis one also
 * seals outcomes (they hold a user's access token) and lets claims lapse.
 */

const CLAIM_TTL = 10_000;
const KEEP = 300_000;
/** Ids are digests of app and code, as CodeExchange makes them. */
const newId = () => createHash("sha256").update(randomBytes(16)).digest("base64url");
/** An outcome holding a user's access token nobody else uses; the leak scan looks for it. */
function outcome(label: string): string {
  const token = `uat_${label}_${randomBytes(32).toString("base64url")}`;
  recordLeakCandidate("access_token", token);
  return JSON.stringify({ ok: true, accessToken: token });
}

let server: RedisServer;
const clients: RedisClient[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

function client(name: string): RedisClient {
  const c = connect(server.url, name);
  clients.push(c);
  return c;
}

const cipher = new ValueCipher([{ id: "k1", key: randomBytes(32) }]);
function redisLedger(keys: RedisKeys, name: string, withCipher = true): RedisExchangeLedger {
  return new RedisExchangeLedger({
    client: client(name),
    keys,
    ...(withCipher ? { cipher } : {}),
  });
}

/** Two replicas' ledgers: one Map for the local one, two connections to one Redis otherwise. */
const pairs: Array<[string, () => [ExchangeLedger, ExchangeLedger]]> = [
  [
    "LocalExchangeLedger",
    () => {
      const one = new LocalExchangeLedger(systemClock);
      return [one, one];
    },
  ],
  [
    "RedisExchangeLedger",
    () => {
      const keys = freshKeys();
      return [redisLedger(keys, "replica-a"), redisLedger(keys, "replica-b")];
    },
  ],
];

describe.each(pairs)("%s", (_name, open) => {
  it("claims once: the others wait, then all read the settled outcome and its owner", async () => {
    const [a, b] = open();
    const id = newId();
    const result = outcome("shared");
    expect(await a.claim(id, "client-1", CLAIM_TTL)).toEqual({ state: "claimed" });
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "pending" });
    expect(await a.claim(id, "client-1", CLAIM_TTL)).toEqual({ state: "pending" });
    await a.settle(id, "client-1", result, KEEP);
    const settled = { state: "settled", owner: "client-1", outcome: result };
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual(settled);
    expect(await a.claim(id, "client-1", CLAIM_TTL)).toEqual(settled);
    // A release after the outcome changes nothing.
    await b.release(id, "client-1");
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual(settled);
  });

  it("a released claim can be claimed again; exchanges are apart", async () => {
    const [a, b] = open();
    const id = newId();
    const other = newId();
    expect(await a.claim(id, "client-1", CLAIM_TTL)).toEqual({ state: "claimed" });
    expect(await b.claim(other, "client-2", CLAIM_TTL)).toEqual({ state: "claimed" });
    await a.release(id, "client-1");
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "claimed" });
    expect(await a.claim(other, "client-1", CLAIM_TTL)).toEqual({ state: "pending" });
  });
});

describe("RedisExchangeLedger", () => {
  it("keeps the outcome sealed at rest under the exchange's key, never in plaintext", async () => {
    const keys = freshKeys();
    const ledger = redisLedger(keys, "sealed");
    const admin = client("admin");
    const id = newId();
    const result = outcome("sealed");
    await ledger.claim(id, "client-1", CLAIM_TTL);
    await ledger.settle(id, "client-1", result, KEEP);
    const found: string[] = [];
    if (!("scanStream" in admin)) throw new Error("a standalone client was expected");
    for await (const batch of admin.scanStream({ match: `${keys.prefix}:*` }))
      found.push(...(batch as string[]));
    expect(found).toEqual([`${keys.prefix}:oauth-exchange:${id}`]);
    const raw = String(await admin.get(keys.exchange(id)));
    const token = (JSON.parse(result) as { accessToken: string }).accessToken;
    expect(raw).not.toContain(token);
    expect(raw).not.toContain("uat_");
    expect(JSON.parse(raw)).toEqual({
      state: "settled",
      owner: "client-1",
      outcome: expect.stringMatching(/^v2:k1:/),
    });
  });

  it("an outcome whose owner was rewritten in Redis, or moved to another exchange, does not open", async () => {
    const keys = freshKeys();
    const ledger = redisLedger(keys, "tamper");
    const admin = client("admin-tamper");
    const id = newId();
    await ledger.settle(id, "client-1", outcome("tampered"), KEEP);
    const raw = JSON.parse(String(await admin.get(keys.exchange(id)))) as Record<string, string>;
    await admin.set(keys.exchange(id), JSON.stringify({ ...raw, owner: "intruder" }));
    await expect(ledger.claim(id, "intruder", CLAIM_TTL)).rejects.toThrow(ValueDecryptionError);
    const elsewhere = newId();
    await admin.set(keys.exchange(elsewhere), JSON.stringify(raw));
    await expect(ledger.claim(elsewhere, "client-1", CLAIM_TTL)).rejects.toThrow(
      ValueDecryptionError,
    );
    // A record this broker never writes is refused without being quoted.
    await admin.set(keys.exchange(elsewhere), "uat_not_json");
    const err = await ledger.claim(elsewhere, "client-1", CLAIM_TTL).catch((e: unknown) => e);
    expect(String(err)).toMatch(/not one this broker writes/);
    expect(String(err)).not.toContain("uat_not_json");
  });

  it("a claim lapses after its TTL (a holder that died); the outcome lives keepMs", async () => {
    const keys = freshKeys();
    const a = redisLedger(keys, "lapse-a");
    const b = redisLedger(keys, "lapse-b");
    const admin = client("admin-ttl");
    const id = newId();
    expect(await a.claim(id, "client-1", 150)).toEqual({ state: "claimed" });
    expect(await admin.pttl(keys.exchange(id))).toBeLessThanOrEqual(150);
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "pending" });
    await delay(250);
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "claimed" });
    await b.settle(id, "client-2", outcome("ttl"), KEEP);
    const pttl = await admin.pttl(keys.exchange(id));
    expect(pttl).toBeGreaterThan(KEEP - 5_000);
    expect(pttl).toBeLessThanOrEqual(KEEP);
  });

  it("releases only its owner's pending claim", async () => {
    const keys = freshKeys();
    const a = redisLedger(keys, "release-a");
    const b = redisLedger(keys, "release-b");
    const id = newId();
    await a.claim(id, "client-1", CLAIM_TTL);
    await b.release(id, "client-2"); // not its claim
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "pending" });
    await a.release(id, "client-1");
    expect(await b.claim(id, "client-2", CLAIM_TTL)).toEqual({ state: "claimed" });
  });

  it("without keys stores the outcome as is (like values); a ledger with keys refuses it", async () => {
    const keys = freshKeys();
    const plain = redisLedger(keys, "plain", false);
    const sealed = redisLedger(keys, "keys");
    const id = newId();
    const result = JSON.stringify({ ok: true, accessToken: "plaintext-for-this-test" });
    await plain.settle(id, "client-1", result, KEEP);
    expect(await plain.claim(id, "client-1", CLAIM_TTL)).toMatchObject({ outcome: result });
    await expect(sealed.claim(id, "client-1", CLAIM_TTL)).rejects.toThrow(
      /stored unencrypted while encryption keys are configured/,
    );
    const open = new RedisExchangeLedger({
      client: client("migrating"),
      keys,
      cipher,
      acceptPlaintextUntil: Date.now() + 60_000,
    });
    expect(await open.claim(id, "client-1", CLAIM_TTL)).toMatchObject({ outcome: result });
  });

  it("takes digests only, never anything shaped like a code or a key", async () => {
    const ledger = redisLedger(freshKeys(), "ids");
    for (const bad of ["short", "a:b:c:d:e:f:g:h:i:j", "x".repeat(200), "code with spaces 0123"])
      await expect(ledger.claim(bad, "client-1", CLAIM_TTL)).rejects.toThrow(
        /^an exchange id must be a base64url digest/,
      );
    await expect(ledger.claim(newId(), "client-1", 0)).rejects.toThrow(RangeError);
  });
});
