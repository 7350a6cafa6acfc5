import { randomBytes, randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StoreConfig } from "../../src/config/config.js";
import type { CredentialKey, StoredCredential } from "../../src/core/credential.js";
import type { CredentialKindSpec } from "../../src/core/kind.js";
import { KindRegistry } from "../../src/core/kind-registry.js";
import { accessToken } from "../../src/credentials/wechat/access-token.js";
import { miniProgram, officialAccount } from "../../src/credentials/wechat/accounts.js";
import { wechatErrcodes } from "../../src/credentials/wechat/errcodes.js";
import { jsapiTicket, wxCardTicket } from "../../src/credentials/wechat/tickets.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { type BrokerCore, buildCore } from "../../src/graph.js";
import { createLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import { toConnectError } from "../../src/shared/to-connect-error.js";
import { RedisKeys } from "../../src/store/redis/keys.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { never } from "../helpers/token-harness.js";

/**
 * The credential-kind seam, exercised by a kind only this test registers: a
 * per-user (openid) kind, fetched on demand, whose fetch calls the real
 * emulator over HTTP through the core's gate and keeps a private state (a
 * refresh token) that the core stores, seals and hands back to the next
 * fetch. The broker's core is composed as in production (buildCore) with a
 * registry holding the real account types and kinds plus this one.
 */

const OA = { appid: "wx0000000000000sk1", secret: "sk-secret-0123456789" };
const KIND = "user_test_token";
const SEALED = /^v2:[A-Za-z0-9._-]+:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/;
const alice = "o_alice-1";
const bob = "o_bob-2";
const keyOf = (subject: string): CredentialKey => ({ appId: "oa", kind: KIND, subject });

/** What one fetch of the test kind was given. */
interface SeenFetch {
  readonly subject: string | undefined;
  readonly state: string | undefined;
}

let issued = 0;
/**
 * The test kind. Its value is an access token from the emulator (any real
 * endpoint will do: the seam is what is tested); its state is "rt-<n>…" on a
 * first fetch and kept afterwards (no state returned).
 */
function userTestToken(seen: SeenFetch[]): CredentialKindSpec {
  return {
    name: KIND,
    protoNumber: 99,
    accountTypes: ["official_account"],
    subject: "openid",
    proactive: false,
    sameValueRetry: "at_end",
    endpoints: [],
    errcodes: wechatErrcodes,
    margins: (_account, s) => ({ refreshMarginMs: s.marginMs, minRemainingMs: s.minRemainingMs }),
    async fetch(ctx) {
      const { account, signal } = ctx;
      seen.push({ subject: ctx.key.subject, state: ctx.current?.state });
      const fetched = await ctx.gate.call(
        account.id,
        "/cgi-bin/token",
        () =>
          ctx.upstreams.wechat.fetchAccessToken(
            { appid: account.appid, secret: account.secret.reveal(), known: ctx.knownValues() },
            signal,
          ),
        { retries: ctx.retries, signal, purpose: ctx.purpose },
      );
      if (ctx.current?.state !== undefined) return fetched;
      // Long enough for the suite-wide leak scan, which then looks for it everywhere.
      const state = `rt-${++issued}-${randomUUID()}`;
      recordLeakCandidate("refresh_token", state);
      return { ...fetched, state };
    },
  };
}

let emulator: Emulator;
let emulatorUrl: string;
const clock = new FakeClock();
beforeAll(async () => {
  emulator = createEmulator({ clock, apps: [{ ...OA, type: "official_account" }] });
  emulatorUrl = (await emulator.listen(0, "127.0.0.1")).url;
});
afterAll(async () => {
  await emulator?.close();
});

const cores: BrokerCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

/** The production composition with the test kind registered; `seen` records its fetches. */
async function startCore(
  store: StoreConfig,
  encryptionKeys?: { id: string; key: Secret }[],
): Promise<{ core: BrokerCore; seen: SeenFetch[] }> {
  const seen: SeenFetch[] = [];
  const kinds = new KindRegistry(
    [officialAccount, miniProgram],
    [accessToken, jsapiTicket, wxCardTicket, userTestToken(seen)],
  );
  const core = buildCore(
    {
      apps: [
        {
          id: "oa",
          type: "official_account",
          appid: OA.appid,
          secret: new Secret(OA.secret),
          tokenMode: "classic",
          prefetch: false,
        },
      ],
      store,
      upstream: { baseUrl: emulatorUrl, timeoutMs: 2000 },
      ...(encryptionKeys ? { encryptionKeys } : {}),
    },
    { logger: debugLogger(), clock, kinds, random: () => 0.5, jitter: () => 0.5 },
  );
  cores.push(core);
  await core.start();
  return { core, seen };
}

/**
 * Logs everything (to nowhere): the suite-wide leak scan reads every pino
 * line, so a state or value logged anywhere on these paths fails the run.
 */
function debugLogger() {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  return createLogger({ level: "debug", destination: sink });
}

async function failure(run: () => Promise<unknown>): Promise<Error> {
  return run().then(
    () => new Error("expected a failure"),
    (err: unknown) => err as Error,
  );
}

describe("a credential kind with a subject and a state (test-only kind)", () => {
  it("gives two subjects two credentials under two keys, each with its own state", async () => {
    const { core, seen } = await startCore({ type: "memory" });
    const { manager } = core;
    const forAlice = await manager.get("oa", KIND, never, alice);
    const forBob = await manager.get("oa", KIND, never, bob);
    expect(forAlice.value).not.toBe(forBob.value);
    expect(emulator.control.checkToken(forBob.value).valid).toBe(true);
    expect(seen).toEqual([
      { subject: alice, state: undefined },
      { subject: bob, state: undefined },
    ]);
    const store = core.stores.store;
    const [storedAlice, storedBob] = [await store.get(keyOf(alice)), await store.get(keyOf(bob))];
    expect(storedAlice).toEqual(forAlice);
    expect(storedBob).toEqual(forBob);
    expect(storedAlice?.state).toMatch(/^rt-\d+-/);
    expect(storedBob?.state).toMatch(/^rt-\d+-/);
    expect(storedAlice?.state).not.toBe(storedBob?.state);
    // Served again from memory: no further fetch.
    expect(await manager.get("oa", KIND, never, alice)).toBe(forAlice);
    expect(seen).toHaveLength(2);
    expect(await store.get({ appId: "oa", kind: KIND })).toBeUndefined();
  });

  it("refuses a missing subject on the kind, and a subject on access_token, as INVALID_ARGUMENT", async () => {
    const { core, seen } = await startCore({ type: "memory" });
    const { manager } = core;
    const calls = emulator.control.callCount("/cgi-bin/token", OA.appid);
    const missing = await failure(() => manager.get("oa", KIND, never));
    expect(toConnectError(missing).code).toBe(Code.InvalidArgument);
    expect(missing.message).toContain(`subject is required for ${KIND}`);
    const onInvalidate = await failure(() => manager.invalidate("oa", KIND, "v", 40001, never));
    expect(toConnectError(onInvalidate).code).toBe(Code.InvalidArgument);
    expect(onInvalidate.message).toContain("subject is required");
    const onAccessToken = await failure(() => manager.get("oa", "access_token", never, alice));
    expect(toConnectError(onAccessToken).code).toBe(Code.InvalidArgument);
    expect(onAccessToken.message).toContain("subject must be empty for access_token");
    // Refused before any fetch.
    expect(seen).toEqual([]);
    expect(emulator.control.callCount("/cgi-bin/token", OA.appid)).toBe(calls);
  });

  it("never plans an on-demand kind's refresh, while the access token's is planned", async () => {
    const { core } = await startCore({ type: "memory" });
    const { manager } = core;
    await manager.get("oa", KIND, never, alice);
    await manager.get("oa", "access_token", never);
    expect(manager.nextRefreshAt("oa", KIND, alice)).toBeUndefined();
    expect(manager.nextRefreshAt("oa", "access_token")).toBeGreaterThan(clock.now());
  });

  it("stores the state with the credential and hands it to the next fetch, which keeps it", async () => {
    const { core, seen } = await startCore({ type: "memory" });
    const { manager } = core;
    const first = await manager.get("oa", KIND, never, alice);
    const state = first.state;
    expect(state).toMatch(/^rt-\d+-/);
    const refreshed = await manager.invalidate("oa", KIND, first.value, 40001, never, {
      subject: alice,
    });
    expect(refreshed.outcome).toBe("refreshed");
    expect(seen).toEqual([
      { subject: alice, state: undefined },
      { subject: alice, state },
    ]);
    expect(refreshed.credential).toMatchObject({ version: 2, state });
    expect(refreshed.credential.value).not.toBe(first.value);
    expect(await core.stores.store.get(keyOf(alice))).toEqual(refreshed.credential);
    // Bob's credential is another key: untouched by Alice's refresh.
    expect(manager.peek("oa", KIND, bob)).toBeUndefined();
  });

  describe("on Redis with encryption keys", () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it("seals the state at rest and keeps it across a restart of the broker (a new core over the same Redis)", async () => {
      const prefix = `sk-${randomUUID().slice(0, 8)}`;
      const store: StoreConfig = {
        type: "redis",
        url: redis.url,
        prefix,
        lockTtlMs: 30_000,
        schedulePollMs: 1000,
      };
      const keyBytes = randomBytes(32).toString("base64");
      recordLeakCandidate("secret", keyBytes);
      const keys = [{ id: "k1", key: new Secret(keyBytes) }];
      const raw = new Redis(redis.url);
      try {
        const before = await startCore(store, keys);
        const first = await before.core.manager.get("oa", KIND, never, alice);
        const forBob = await before.core.manager.get("oa", KIND, never, bob);
        const state = first.state ?? "";
        expect(state).toMatch(/^rt-\d+-/);

        const redisKeys = new RedisKeys(prefix);
        expect(redisKeys.credential(keyOf(alice))).toBe(`${prefix}:{oa/${KIND}/${alice}}:cred`);
        const hash = await raw.hgetall(redisKeys.credential(keyOf(alice)));
        expect(hash.value).toMatch(SEALED);
        expect(hash.state).toMatch(SEALED);
        const bobHash = await raw.hgetall(redisKeys.credential(keyOf(bob)));
        expect(bobHash.state).toMatch(SEALED);
        const everything = JSON.stringify([hash, bobHash, await raw.keys(`${prefix}:*`)]);
        for (const secret of [first.value, state, forBob.value, forBob.state ?? "-"])
          expect(everything).not.toContain(secret);

        // The broker restarts: nothing is held in memory, the store has it all.
        await before.core.close();
        const after = await startCore(store, keys);
        const again: StoredCredential = await after.core.manager.get("oa", KIND, never, alice);
        expect(again).toEqual(first);
        expect(after.seen).toEqual([]);
        const refreshed = await after.core.manager.invalidate(
          "oa",
          KIND,
          first.value,
          40001,
          never,
          { subject: alice },
        );
        expect(after.seen).toEqual([{ subject: alice, state }]);
        expect(refreshed.credential).toMatchObject({ version: 2, state });
        const rewritten = await raw.hgetall(redisKeys.credential(keyOf(alice)));
        expect(rewritten.state).toMatch(SEALED);
        expect(rewritten.state).not.toBe(hash.state);
        expect(JSON.stringify(rewritten)).not.toContain(state);
      } finally {
        raw.disconnect();
      }
    });
  });
});
