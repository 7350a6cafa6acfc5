import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type CredentialKey, keyId, type StoredCredential } from "../../src/core/credential.js";
import type { TokenStore } from "../../src/core/ports/token-store.js";
import { createStore, type StoreBundle } from "../../src/create-store.js";
import { systemClock } from "../../src/shared/clock.js";
import { silentLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import { isSealedValue } from "../../src/store/sealing/value-cipher.js";
import { OAUTH_APP, startOAuthRedisBroker } from "../helpers/oauth-redis-broker.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect } from "../store/redis/helpers.js";

/**
 * `token-broker grants export` and `import` (issue 11): users' grants made
 * through the broker on one Redis, exported to a passphrase-sealed file,
 * imported into a fresh Redis with another encryption key (a move), equal
 * there in every field; the file holds no token; a wrong passphrase or an
 * altered file writes nothing; importing again keeps what is newer and
 * leaves deleted grants deleted.
 */

const run = promisify(execFile);
const BIN = "bin/token-broker.js";
const PASSPHRASE = "correct horse battery staple 11";
const KIND = "user_access_token";

interface Ran {
  code?: number;
  stdout: string;
  stderr: string;
}

let source: RedisServer;
let target: RedisServer;
let dir: string;
const keys = {
  source: randomBytes(32).toString("base64"),
  target: randomBytes(32).toString("base64"),
};
beforeAll(async () => {
  [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
  dir = mkdtempSync(join(tmpdir(), "grants-cli-"));
});
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** A config file naming a Redis store and its key, the way an operator's broker.yaml does. */
function configFile(name: string, url: string, prefix: string, key: string): string {
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, `${key}\n`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `store: { type: redis, url: "${url}", prefix: ${prefix} }`,
      `security: { encryptionKeys: [{ id: k1, key: { file: ${keyFile} } }] }`,
    ].join("\n"),
  );
  return file;
}

function openStore(url: string, prefix: string, key: string): StoreBundle {
  return createStore(
    { type: "redis", url, prefix, lockTtlMs: 30_000, schedulePollMs: 1000 },
    {
      clock: systemClock,
      logger: silentLogger(),
      encryptionKeys: [{ id: "k1", key: new Secret(key) }],
    },
  );
}

async function grantsOf(store: TokenStore): Promise<Map<string, StoredCredential>> {
  const all = new Map<string, StoredCredential>();
  for await (const { key, credential } of store.entries(KIND)) all.set(keyId(key), credential);
  return all;
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> =>
  run(process.execPath, [BIN, ...args], {
    env: { ...process.env, TOKEN_BROKER_EXPORT_PASSPHRASE: "", ...env },
  }).catch((e: Ran) => e);

describe("token-broker grants export and import", { timeout: 240_000 }, () => {
  it("moves every grant to another Redis, sealed in transit and at rest, and refuses a wrong passphrase or an altered file", async () => {
    // Grants made through the broker: four users, one refreshed, one forgotten.
    const h = await startOAuthRedisBroker({
      redisUrl: source.url,
      prefix: "src",
      key: keys.source,
      // Two hours back, so after the refresh below the broker's clock is about the real one:
      // a store refuses (and deletes) a credential fetched more than a minute in its future.
      startMs: Date.now() - 7_300_000,
    });
    const secrets: string[] = [keys.source, keys.target];
    let exported: Map<string, StoredCredential>;
    try {
      const users = ["o-grant-1", "o-grant-2", "o-grant-3", "o-grant-4"];
      for (const [i, openid] of users.entries())
        await h.oauth.exchangeCode({
          appId: OAUTH_APP.id,
          code: h.mint(openid, i === 0 ? "u-grant-union" : undefined),
        });
      await h.clock.advance(7_300_000);
      const refreshed = await h.tokens.getToken({
        appId: OAUTH_APP.id,
        kind: TokenKind.USER_ACCESS_TOKEN,
        subject: "o-grant-1",
      });
      expect(refreshed.token?.version).toBe(2n);
      await h.oauth.forgetUser({ appId: OAUTH_APP.id, openid: "o-grant-4" });
      for (const openid of users)
        for (const g of h.emulator.control.oauthGrants(OAUTH_APP.appid, openid))
          secrets.push(g.accessToken, g.refreshToken);
      exported = await grantsOf(h.broker.core.stores.store);
    } finally {
      await h.close();
    }
    expect([...exported.keys()].sort()).toEqual(
      ["o-grant-1", "o-grant-2", "o-grant-3"].map((o) => `${OAUTH_APP.id}/${KIND}/${o}`),
    );
    expect(exported.get(`${OAUTH_APP.id}/${KIND}/o-grant-1`)?.state).toContain("u-grant-union");

    const from = configFile("source", source.url, "src", keys.source);
    const to = configFile("target", target.url, "dst", keys.target);
    const passphraseFile = join(dir, "passphrase");
    writeFileSync(passphraseFile, `${PASSPHRASE}\n`);
    const file = join(dir, "grants.tbg");
    const out = await cli([
      "grants",
      "export",
      "--config",
      from,
      "--out",
      file,
      "--passphrase-file",
      passphraseFile,
    ]);
    expect(out.stderr).toBe("");
    expect(JSON.parse(out.stdout)).toEqual({ exported: 3, apps: { web: 3 }, out: file });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Sealed: no token, refresh token, key or even openid in the file's bytes.
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8).toString("latin1")).toBe("TBGRANTS");
    for (const s of [...secrets, "o-grant-1", "u-grant-union"])
      expect(bytes.includes(Buffer.from(s)), "a value in plaintext").toBe(false);

    // A wrong passphrase, an altered file, a memory store: refused, nothing written.
    const altered = join(dir, "altered.tbg");
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40] = (flipped[flipped.length - 40] ?? 0) ^ 1;
    writeFileSync(altered, flipped);
    const memory = join(dir, "memory.yaml");
    writeFileSync(memory, "store: { type: memory }\n");
    const importing = (config: string, input: string, passphrase: string) =>
      cli(["grants", "import", "--config", config, "--in", input], {
        TOKEN_BROKER_EXPORT_PASSPHRASE: passphrase,
      });
    const [wrong, tampered, inMemory] = await Promise.all([
      importing(to, file, "not the passphrase at all"),
      importing(to, altered, PASSPHRASE),
      importing(memory, file, PASSPHRASE),
    ]);
    for (const refused of [wrong, tampered]) {
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        "cannot open the grants file: wrong passphrase, or the file was altered or damaged",
      );
    }
    expect(inMemory.code).toBe(1);
    expect(inMemory.stderr).toContain("the config's store is memory");
    const inspect = connect(target.url, "grants-inspector");
    try {
      expect(await inspect.dbsize()).toBe(0);

      const imported = await importing(to, file, PASSPHRASE);
      expect(JSON.parse(imported.stdout)).toMatchObject({
        grants: 3,
        imported: 3,
        unchanged: 0,
        keptNewer: 0,
        refused: 0,
        expired: 0,
      });
      // Sealed at rest under the target's own key.
      const held = await inspect.hgetall(`dst:{${OAUTH_APP.id}/${KIND}/o-grant-1}:cred`);
      expect(isSealedValue(held.value ?? "")).toBe(true);
      expect(isSealedValue(held.state ?? "")).toBe(true);
    } finally {
      inspect.disconnect();
    }

    const moved = openStore(target.url, "dst", keys.target);
    try {
      // Equal in every field: value, refresh token (state), version, expiries.
      expect(await grantsOf(moved.store)).toEqual(exported);

      // Meanwhile at the target: one grant forgotten, one re-authorized later.
      const key = (openid: string): CredentialKey => ({
        appId: OAUTH_APP.id,
        kind: KIND,
        subject: openid,
      });
      const two = exported.get(keyId(key("o-grant-2")));
      const three = exported.get(keyId(key("o-grant-3")));
      if (!two || !three) throw new Error("grants missing");
      expect(await moved.store.delete(key("o-grant-2"), two.version)).toBe(true);
      const { version: _, ...rest } = three;
      const newer = await moved.store.compareAndSet(key("o-grant-3"), three.version, 1, {
        ...rest,
        value: `newer-${randomBytes(24).toString("base64url")}`,
        fetchedAt: three.fetchedAt + 60_000,
      });
      expect(newer.written).toBe(true);

      const again = await importing(to, file, PASSPHRASE);
      expect(JSON.parse(again.stdout)).toMatchObject({
        imported: 0,
        unchanged: 1,
        keptNewer: 1,
        refused: 1,
      });
      const after = await grantsOf(moved.store);
      expect(after.has(keyId(key("o-grant-2")))).toBe(false);
      expect(after.get(keyId(key("o-grant-3")))?.value).toMatch(/^newer-/);
    } finally {
      await moved.close();
    }
  });
});
