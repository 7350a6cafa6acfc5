import { createCipheriv, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CredentialKey, NewCredential } from "../../../src/core/credential.js";
import type { CredentialUpdate } from "../../../src/core/ports/token-store.js";
import { Secret } from "../../../src/shared/secret.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";
import { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";
import {
  type EncryptionKey,
  isSealedValue,
  parseEncryptionKeys,
  ValueCipher,
  ValueDecryptionError,
} from "../../../src/store/redis/value-cipher.js";
import { recordLeakCandidate } from "../../helpers/leak-recorder.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { captureLogger, connect, freshKeys, until } from "./helpers.js";

const T0 = Date.now();
const HOUR = 3_600_000;
const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => ({
  value,
  fetchedAt: T0,
  expiresAt: T0 + 2 * HOUR,
  ...extra,
});
const token = { appId: "wx-enc-1", kind: "access_token" } as const;
/** The record fields a value is bound to (credential-codec.ts builds the real one). */
const B = "version=1;fetchedAt=1;expiresAt=2;previousValidUntil=";
const ticket = { appId: "wx-enc-1", kind: "jsapi_ticket" } as const;
const SEALED = /^v2:([A-Za-z0-9._-]+):([A-Za-z0-9_-]{16}):([A-Za-z0-9_-]+)$/;

/** A fresh key; the suite-wide leak scan looks for it everywhere (a no-op when the scan is off). */
function key(id: string): EncryptionKey {
  const k = { id, key: randomBytes(32) };
  recordLeakCandidate("secret", k.key.toString("base64"));
  return k;
}
/** A token-shaped value nobody else uses, so finding it anywhere is a leak; recorded likewise. */
function plaintext(label: string): string {
  const value = `${label}_${randomBytes(48).toString("base64url")}`;
  recordLeakCandidate("access_token", value);
  return value;
}
/** A refresh-token-shaped state nobody else uses; recorded likewise. */
function refreshToken(label: string): string {
  const state = `${label}_${randomBytes(48).toString("base64url")}`;
  recordLeakCandidate("refresh_token", state);
  return state;
}

describe("ValueCipher", () => {
  const k1 = key("k1");
  const k2 = key("k2");

  it("seals as v2:<keyId>:<12-byte IV>:<ciphertext+tag>, with a fresh IV every time", () => {
    const cipher = new ValueCipher([k1]);
    const a = cipher.encrypt("the-token", "app/access_token", B);
    const b = cipher.encrypt("the-token", "app/access_token", B);
    expect(a).toMatch(SEALED);
    expect(a).not.toBe(b);
    const [, keyId, iv, body] = SEALED.exec(a) ?? [];
    expect(keyId).toBe("k1");
    expect(Buffer.from(iv ?? "", "base64url")).toHaveLength(12);
    // AES-GCM keeps the length: 9 plaintext bytes + 16 tag bytes.
    expect(Buffer.from(body ?? "", "base64url")).toHaveLength(9 + 16);
    expect(a).not.toContain("the-token");
    expect(cipher.decrypt(a, "app/access_token", B)).toBe("the-token");
    expect(isSealedValue(a)).toBe(true);
    expect(isSealedValue("13_fUIS1WabcDEF")).toBe(false);
  });

  it("encrypts with the first key and decrypts with any configured key (rotation)", () => {
    const old = new ValueCipher([k1]).encrypt("old-value", "a/access_token", B);
    const rotated = new ValueCipher([k2, k1]);
    expect(rotated.currentKeyId).toBe("k2");
    expect(rotated.keyIds).toEqual(["k2", "k1"]);
    expect(rotated.decrypt(old, "a/access_token", B)).toBe("old-value");
    expect(rotated.encrypt("new-value", "a/access_token", B)).toMatch(/^v2:k2:/);
  });

  it("refuses an unknown key id, a wrong key, another credential's AAD and altered bytes, quoting neither value nor key", () => {
    const value = plaintext("secret-token");
    const sealed = new ValueCipher([k1]).encrypt(value, "a/access_token", B);
    const attempts: Array<[() => string, string, RegExp]> = [
      [
        () => new ValueCipher([k2]).decrypt(sealed, "a/access_token", B),
        "unknown-key",
        /encrypted with key 'k1', which is not configured \(configured: k2\)/,
      ],
      [
        () =>
          new ValueCipher([{ id: "k1", key: randomBytes(32) }]).decrypt(
            sealed,
            "a/access_token",
            B,
          ),
        "authentication",
        /authentication failed/,
      ],
      [
        () => new ValueCipher([k1]).decrypt(sealed, "b/access_token", B),
        "authentication",
        /credential b\/access_token .*copied from another credential/,
      ],
      [
        () =>
          new ValueCipher([k1]).decrypt(
            sealed,
            "a/access_token",
            B.replace("expiresAt=2", "expiresAt=999999999"),
          ),
        "authentication",
        /its version or times were changed in Redis/,
      ],
      [
        () => new ValueCipher([k1]).decrypt(flipLastChar(sealed), "a/access_token", B),
        "authentication",
        /authentication failed/,
      ],
      [
        () => new ValueCipher([k1]).decrypt("v2:k1:nope", "a/access_token", B),
        "malformed",
        /malformed ciphertext/,
      ],
      [
        () => new ValueCipher([k1]).decrypt("v3:k1:aaaa:bbbb", "a/access_token", B),
        "malformed",
        /unsupported format 'v3'/,
      ],
    ];
    for (const [attempt, problem, message] of attempts) {
      const err = catchError(attempt);
      expect(err).toBeInstanceOf(ValueDecryptionError);
      expect((err as ValueDecryptionError).problem).toBe(problem);
      expect(err.message).toMatch(message);
      expectNoKeyOrValue(`${err.message} ${err.stack ?? ""}`, value, [k1, k2]);
    }
  });

  it("still opens v1 values (AAD: the credential id alone), as earlier releases wrote them", () => {
    // A v1 envelope built as the earlier release did: AES-256-GCM, AAD = the credential id.
    const iv = randomBytes(12);
    const gcm = createCipheriv("aes-256-gcm", k1.key, iv, { authTagLength: 16 });
    gcm.setAAD(Buffer.from("a/access_token", "utf8"));
    const body = Buffer.concat([gcm.update("legacy-value", "utf8"), gcm.final(), gcm.getAuthTag()]);
    const v1 = `v1:k1:${iv.toString("base64url")}:${body.toString("base64url")}`;
    expect(new ValueCipher([k1]).decrypt(v1, "a/access_token", B)).toBe("legacy-value");
    expect(() => new ValueCipher([k1]).decrypt(v1, "b/access_token", B)).toThrow(
      ValueDecryptionError,
    );
  });

  it("prints no key material", () => {
    const cipher = new ValueCipher([k1, k2]);
    const shown = `${inspect(cipher)} ${JSON.stringify({ cipher })} ${String(cipher.toJSON())}`;
    expect(shown).toContain("k1");
    expectNoKeyOrValue(shown, "unused-value", [k1, k2]);
  });

  it("parseEncryptionKeys takes [{ id, key: base64 }] (string or Secret) and explains bad ones", () => {
    const b64 = k1.key.toString("base64");
    const parsed = parseEncryptionKeys([
      { id: "k1", key: b64 },
      { id: "k2", key: new Secret(k2.key.toString("base64url")) },
    ]);
    expect(parsed.map((k) => k.id)).toEqual(["k1", "k2"]);
    expect(parsed[0]?.key.equals(k1.key)).toBe(true);
    expect(parsed[1]?.key.equals(k2.key)).toBe(true);

    const bad: Array<[unknown, RegExp]> = [
      [[], /store\.encryptionKeys must be a non-empty list of \{ id, key \}/],
      ["k1", /must be a non-empty list/],
      [[{ id: "k1" }], /store\.encryptionKeys\[0\]\.key \(key 'k1'\) must be a base64 string/],
      [[{ id: "a:b", key: b64 }], /\[0\]\.id must be 1 to 64 letters/],
      [
        [
          { id: "k1", key: b64 },
          { id: "k1", key: b64 },
        ],
        /\[1\]\.id 'k1' is used by an earlier key/,
      ],
      [
        [{ id: "short", key: randomBytes(16).toString("base64") }],
        /\[0\]\.key \(key 'short'\) must decode to 32 bytes .* got 16/,
      ],
      [
        [{ id: "junk", key: "not base64 at all!" }],
        /\[0\]\.key \(key 'junk'\) is not valid base64/,
      ],
    ];
    for (const [spec, message] of bad) {
      const err = catchError(() => parseEncryptionKeys(spec, "store.encryptionKeys"));
      expect(err.message).toMatch(message);
      expectNoKeyOrValue(err.message, "unused-value", [k1, k2]);
    }
    expect(() => new ValueCipher([{ id: "k", key: randomBytes(31) }])).toThrow(/32 bytes, got 31/);
    expect(() => new ValueCipher([])).toThrow(/at least one key/);
  });
});

describe("RedisTokenStore with encryption at rest", () => {
  let server: RedisServer;
  const opened: RedisTokenStore[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function store(
    keys: RedisKeys,
    cipherKeys?: EncryptionKey[],
    logger = captureLogger(),
    acceptPlaintextUntil?: number,
  ) {
    const s = new RedisTokenStore({
      client: connect(server.url, `enc-${opened.length}`),
      keys,
      logger: logger.logger,
      ...(cipherKeys ? { cipher: new ValueCipher(cipherKeys) } : {}),
      ...(acceptPlaintextUntil === undefined ? {} : { acceptPlaintextUntil }),
    });
    opened.push(s);
    await s.subscribed();
    return s;
  }

  function admin(): Redis {
    const c = new Redis(server.port, "127.0.0.1", { lazyConnect: false });
    clients.push(c);
    return c;
  }

  /** Every command Redis runs (scripts' own HSET and PUBLISH included), as MONITOR shows them. */
  async function monitor(): Promise<{ lines: string[] }> {
    const m = await admin().monitor();
    clients.push(m);
    const lines: string[] = [];
    m.on("monitor", (_time: string, args: string[]) => lines.push(args.join(" ")));
    return { lines };
  }

  /** Every message on the updates channel, as a raw subscriber receives it. */
  async function listen(keys: RedisKeys): Promise<string[]> {
    const sub = admin();
    const messages: string[] = [];
    sub.on("message", (_channel: string, message: string) => messages.push(message));
    await sub.subscribe(keys.updates);
    return messages;
  }

  it("keeps no plaintext value in hash fields, script arguments, Lua commands or PUBLISH payloads", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const writer = await store(keys, [k1]);
    const reader = await store(keys, [k1]);
    const heard: CredentialUpdate[] = [];
    reader.subscribe((u) => heard.push(u));
    const watch = await monitor();
    const raw = await listen(keys);
    const values = [plaintext("tok1"), plaintext("tok2"), plaintext("tkt1"), plaintext("tok3")];

    expect((await writer.compareAndSet(token, 0, 1, next(values[0] ?? ""))).written).toBe(true);
    const second = await writer.compareAndSet(token, 1, 1, next(values[1] ?? ""));
    expect(second).toEqual({ written: true, credential: { ...next(values[1] ?? ""), version: 2 } });
    await writer.compareAndSet(ticket, 0, 1, next(values[2] ?? ""));
    // restore-credential-1.lua takes the same route.
    await writer.restore(
      { appId: "wx-enc-2", kind: "access_token" },
      {
        ...next(values[3] ?? ""),
        version: 7,
      },
    );

    // Reads and cross-instance pub/sub open the values again.
    expect(await reader.get(token)).toEqual({ ...next(values[1] ?? ""), version: 2 });
    expect((await reader.get(ticket))?.value).toBe(values[2]);
    expect((await reader.get({ appId: "wx-enc-2", kind: "access_token" }))?.value).toBe(values[3]);
    await until(() => heard.length >= 3 && heard.at(-1)?.key.appId === "wx-enc-2", "the updates");
    // Re-read after each notice: two quick writes of one credential may arrive as the second.
    const heardValues = heard.map((u) => u.credential.value);
    expect(heardValues.slice(-3)).toEqual(values.slice(1));
    for (const v of heardValues) expect(values).toContain(v);

    await until(() => raw.length >= 4, "four raw messages");
    const c = admin();
    const hash = await c.hgetall(keys.credential(token));
    expect(hash.value).toMatch(SEALED);
    expect(hash.value).toMatch(/^v2:k1:/);
    expect(hash.version).toBe("2");
    // The update messages are hints: a credential id and a version, no value sealed or not.
    for (const m of raw)
      expect(Object.keys(JSON.parse(m) as object).sort()).toEqual(["id", "version"]);
    await until(() => watch.lines.some((l) => /^publish /i.test(l)), "MONITOR lines");
    const everything = [
      JSON.stringify(hash),
      JSON.stringify(await c.hgetall(keys.credential(ticket))),
      ...raw,
      ...watch.lines,
    ].join("\n");
    expect(watch.lines.some((l) => /^hset .*:cred value v2:k1:/i.test(l))).toBe(true);
    for (const v of values) expect(everything).not.toContain(v);
    expectNoKeyOrValue(everything, values[0] ?? "", [k1]);
  });

  it("rotates: [k2, k1] reads k1 values and writes k2; [k2] alone gets a clear error for k1 values", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const k2 = key("k2");
    const a = await store(keys, [k1]);
    const oldValue = plaintext("old");
    await a.compareAndSet(token, 0, 1, next(oldValue));
    await a.compareAndSet(ticket, 0, 1, next(plaintext("old-ticket")));

    // Rolled out with the new key first and the old one kept.
    const b = await store(keys, [k2, k1]);
    expect((await b.get(token))?.value).toBe(oldValue);
    const newValue = plaintext("new");
    expect((await b.compareAndSet(token, 1, 1, next(newValue))).written).toBe(true);
    const c = admin();
    expect(await c.hget(keys.credential(token), "value")).toMatch(/^v2:k2:/);
    expect((await b.get(token))?.value).toBe(newValue);

    // An instance that has only the new key: k2 values open, k1 values fail clearly.
    const log = captureLogger();
    const onlyK2 = await store(keys, [k2], log);
    expect((await onlyK2.get(token))?.value).toBe(newValue);
    const err = await onlyK2.get(ticket).then(
      () => new Error("read succeeded"),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ValueDecryptionError);
    expect(err.message).toBe(
      "cannot decrypt credential wx-enc-1/jsapi_ticket: it is encrypted with key 'k1', which is not configured (configured: k2); add it after the current key to read values written before a rotation",
    );

    // A k1-only instance hears a k2 write and cannot open it: logged (by key id), not delivered.
    const heardByOld: CredentialUpdate[] = [];
    const aLog = captureLogger();
    const old = await store(keys, [k1], aLog);
    old.subscribe((u) => heardByOld.push(u));
    await b.compareAndSet(token, 2, 1, next(plaintext("newer")));
    await until(() => aLog.text().includes("cannot decrypt"), "the decryption error log");
    expect(heardByOld).toEqual([]);
    const line = JSON.parse(aLog.text().trim().split("\n").at(-1) ?? "{}") as Record<
      string,
      unknown
    >;
    expect(line).toMatchObject({ level: "error", keyId: "k2" });
    expectNoKeyOrValue(aLog.text() + log.text(), newValue, [k1, k2]);
  });

  it("binds a ciphertext to its credential: copied into another credential's hash it is refused", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const s = await store(keys, [k1]);
    const value = plaintext("moved");
    await s.compareAndSet(token, 0, 1, next(value));
    await s.compareAndSet(ticket, 0, 1, next(plaintext("victim")));
    const c = admin();
    const sealed = await c.hget(keys.credential(token), "value");
    await c.hset(keys.credential(ticket), "value", sealed ?? "");
    const err = await s.get(ticket).then(
      () => new Error("read succeeded"),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ValueDecryptionError);
    expect((err as ValueDecryptionError).problem).toBe("authentication");
    expect(err.message).toMatch(/^cannot decrypt credential wx-enc-1\/jsapi_ticket with key 'k1'/);
    expect(err.message).not.toContain(value);
    // The original still opens.
    expect((await s.get(token))?.value).toBe(value);
  });

  it("migrates: plaintext is read with keys only while acceptPlaintextUntil is open, and sealed at the next write", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const plain = await store(keys);
    const first = plaintext("plain");
    await plain.compareAndSet(token, 0, 1, next(first));
    const c = admin();
    expect(await c.hget(keys.credential(token), "value")).toBe(first); // no cipher: as before

    const migrating = await store(keys, [k1], captureLogger(), Date.now() + HOUR);
    expect((await migrating.get(token))?.value).toBe(first);
    const sealedValue = plaintext("sealed");
    await migrating.compareAndSet(token, 1, 1, next(sealedValue));
    expect(await c.hget(keys.credential(token), "value")).toMatch(/^v2:k1:/);
    // A replica without keys now refuses the sealed value instead of serving ciphertext.
    await expect(plain.get(token)).rejects.toThrow(
      "credential wx-enc-1/access_token is encrypted but no encryption keys are configured",
    );

    // Once the window has closed (or without it), a plaintext record is refused:
    // logged, never served, and deleted so the next refresh replaces it.
    await plain.compareAndSet(ticket, 0, 1, next(plaintext("late-plain")));
    const log = captureLogger();
    const closed = await store(keys, [k1], log, Date.now() - 1);
    expect(await closed.get(ticket)).toBeUndefined();
    expect(await c.exists(keys.credential(ticket))).toBe(0);
    expect(log.text()).toContain('"reason":"plaintext"');
    expect((await closed.compareAndSet(ticket, 0, 1, next(plaintext("refetched")))).written).toBe(
      true,
    );
  });

  it("refuses a record HSET directly in Redis: plaintext, an extended expiry, a renumbered version", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const log = captureLogger();
    const s = await store(keys, [k1], log);
    const c = admin();
    const forged = plaintext("forged");
    const now = Date.now();
    await c.hset(keys.credential(token), {
      value: forged,
      version: "99",
      fence: "0",
      fetchedAt: String(now),
      expiresAt: String(now + 7_200_000),
    });
    expect(await s.get(token)).toBeUndefined();
    expect(log.text()).toContain('"reason":"plaintext"');

    // A sealed record whose expiry or version is changed no longer opens (the AAD binds them).
    const real = plaintext("real");
    await s.compareAndSet(token, 0, 1, next(real));
    // Re-dated 30 s later, to live 30 s longer (within the caps, so only the AAD can tell).
    await c.hset(keys.credential(token), {
      fetchedAt: String(T0 + 30_000),
      expiresAt: String(T0 + 2 * HOUR + 30_000),
    });
    await expect(s.get(token)).rejects.toThrow(/its version or times were changed in Redis/);
    await c.hset(keys.credential(token), {
      fetchedAt: String(T0),
      expiresAt: String(T0 + 2 * HOUR),
      version: "50",
    });
    await expect(s.get(token)).rejects.toThrow(ValueDecryptionError);
    await c.hset(keys.credential(token), "version", "1");
    expect((await s.get(token))?.value).toBe(real);

    // Without keys nothing is authenticated, but no record may claim more life than WeChat gives.
    const plainKeys = freshKeys();
    const noKeysLog = captureLogger();
    const noKeys = await store(plainKeys, undefined, noKeysLog);
    await c.hset(plainKeys.credential(token), {
      value: forged,
      version: "3",
      fence: "0",
      fetchedAt: String(now),
      expiresAt: String(now + 30 * 24 * HOUR),
    });
    expect(await noKeys.get(token)).toBeUndefined();
    expect(noKeysLog.text()).toContain('"reason":"lifetime"');
    await c.hset(plainKeys.credential(token), {
      value: forged,
      version: "3",
      fence: "0",
      fetchedAt: String(now + 24 * HOUR),
      expiresAt: String(now + 25 * HOUR),
    });
    expect(await noKeys.get(token)).toBeUndefined();
    expect(noKeysLog.text()).toContain('"reason":"future"');
    expectNoKeyOrValue(log.text() + noKeysLog.text(), forged, [k1]);
  });

  it("seals a kind's state like the value: never in plaintext in the hash, script arguments or messages", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const writer = await store(keys, [k1]);
    const reader = await store(keys, [k1]);
    const watch = await monitor();
    const raw = await listen(keys);
    const user: CredentialKey = { appId: "wx-enc-1", kind: "user_token", subject: "o_enc_1" };
    const values = [plaintext("utok1"), plaintext("utok2")];
    const states = [refreshToken("rt1"), refreshToken("rt2")];
    await writer.compareAndSet(user, 0, 1, next(values[0] ?? "", { state: states[0] ?? "" }));
    await writer.restore(user, {
      ...next(values[1] ?? "", { fetchedAt: T0 + 1000, state: states[1] ?? "" }),
      version: 5,
    });
    expect(await reader.get(user)).toEqual({
      ...next(values[1] ?? "", { fetchedAt: T0 + 1000, state: states[1] ?? "" }),
      version: 5,
    });

    const c = admin();
    const hash = await c.hgetall(keys.credential(user));
    expect(hash.value).toMatch(SEALED);
    expect(hash.state).toMatch(SEALED);
    await until(() => raw.length >= 2, "two raw messages");
    for (const m of raw)
      expect(Object.keys(JSON.parse(m) as object).sort()).toEqual(["id", "version"]);
    await until(() => watch.lines.filter((l) => /^publish /i.test(l)).length >= 2, "MONITOR lines");
    expect(watch.lines.some((l) => /^hset .*:cred .*state v2:k1:/i.test(l))).toBe(true);
    const everything = [JSON.stringify(hash), ...raw, ...watch.lines].join("\n");
    for (const v of [...values, ...states]) expect(everything).not.toContain(v);
  });

  it("binds a sealed state to its field: a value moved into state, or a state into value, does not open", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const s = await store(keys, [k1]);
    const user: CredentialKey = { appId: "wx-enc-1", kind: "user_token", subject: "o_swap" };
    const value = plaintext("swapped-value");
    const state = refreshToken("swapped-state");
    await s.compareAndSet(user, 0, 1, next(value, { state }));
    const c = admin();
    const hash = keys.credential(user);
    const sealed = await c.hmget(hash, "value", "state");
    await c.hset(hash, { value: sealed[1] ?? "", state: sealed[0] ?? "" });
    const err = await s.get(user).then(
      () => new Error("read succeeded"),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ValueDecryptionError);
    expect((err as ValueDecryptionError).problem).toBe("authentication");
    // Only the state moved into value: the value opens, the state does not, and says so.
    await c.hset(hash, { value: sealed[0] ?? "", state: sealed[0] ?? "" });
    await expect(s.get(user)).rejects.toThrow(
      /^cannot decrypt credential wx-enc-1\/user_token\/o_swap with key 'k1': authentication failed .* \(its state field\)$/,
    );
    await c.hset(hash, { value: sealed[0] ?? "", state: sealed[1] ?? "" });
    expect(await s.get(user)).toEqual({ ...next(value, { state }), version: 1 });
    // Another subject's sealed state does not open here either (the credential id is in its AAD).
    const other: CredentialKey = { ...user, subject: "o_other" };
    await s.compareAndSet(
      other,
      0,
      1,
      next(plaintext("other-value"), { state: refreshToken("o") }),
    );
    await c.hset(hash, "state", (await c.hget(keys.credential(other), "state")) ?? "");
    await expect(s.get(user)).rejects.toThrow(ValueDecryptionError);
  });

  it("refuses a plaintext state under keys like a plaintext value, unless acceptPlaintextUntil is open", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const user: CredentialKey = { appId: "wx-enc-1", kind: "user_token", subject: "o_plain" };
    const plain = await store(keys);
    const state = refreshToken("plain-state");
    await plain.compareAndSet(user, 0, 1, next(plaintext("plain-value"), { state }));
    const c = admin();
    expect(await c.hget(keys.credential(user), "state")).toBe(state); // no cipher: as is

    const migrating = await store(keys, [k1], captureLogger(), Date.now() + HOUR);
    expect((await migrating.get(user))?.state).toBe(state);
    // The value alone sealed (as a forger could leave it): the plaintext state is still refused.
    const log = captureLogger();
    const closed = await store(keys, [k1], log, Date.now() - 1);
    const sealedValue = plaintext("sealed-value");
    await migrating.compareAndSet(user, 1, 1, next(sealedValue, { state: refreshToken("s") }));
    await c.hset(keys.credential(user), "state", state);
    expect(await closed.get(user)).toBeUndefined();
    expect(log.text()).toContain('"reason":"plaintext"');
    expect(log.text()).toContain(
      "the state of credential wx-enc-1/user_token/o_plain is stored unencrypted",
    );
    expect(await c.exists(keys.credential(user))).toBe(0);
    expectNoKeyOrValue(log.text(), state, [k1]);
  });

  it("reads a sealed record as the release before states wrote it (no state field, the value's AAD unlabelled)", async () => {
    const k1 = key("k1");
    const value = plaintext("before-upgrade");
    const fields = { version: "3", fetchedAt: String(T0), expiresAt: String(T0 + 2 * HOUR) };
    const binding = `version=3;fetchedAt=${T0};expiresAt=${T0 + 2 * HOUR};previousValidUntil=`;
    const prefix = `tb-old-${randomBytes(4).toString("hex")}`;
    await admin().hset(`${prefix}:{wx-enc-1/access_token}:cred`, {
      ...fields,
      fence: "1",
      value: new ValueCipher([k1]).encrypt(value, "wx-enc-1/access_token", binding),
    });
    const s = await store(new RedisKeys(prefix), [k1]);
    expect(await s.get(token)).toEqual({ ...next(value), version: 3 });
  });

  it("reports a refused write's current credential decrypted", async () => {
    const keys = freshKeys();
    const k1 = key("k1");
    const s = await store(keys, [k1]);
    const value = plaintext("current");
    await s.compareAndSet(token, 0, 5, next(value));
    const stale: CredentialKey = token;
    expect(await s.compareAndSet(stale, 0, 5, next(plaintext("late")))).toEqual({
      written: false,
      reason: "version",
      current: { ...next(value), version: 1 },
    });
  });
});

function catchError(run: () => unknown): Error {
  try {
    run();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

function flipLastChar(sealed: string): string {
  const last = sealed.at(-2) === "A" ? "B" : "A";
  return `${sealed.slice(0, -2)}${last}${sealed.at(-1)}`;
}

/** Neither the value nor any key, in any of the encodings a key is written in. */
function expectNoKeyOrValue(text: string, value: string, keys: EncryptionKey[]): void {
  expect(text).not.toContain(value);
  for (const k of keys)
    for (const encoding of ["base64", "base64url", "hex"] as const)
      expect(text).not.toContain(k.key.toString(encoding).replace(/=+$/, ""));
}
