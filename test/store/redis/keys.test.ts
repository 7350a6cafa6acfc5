import { describe, expect, it } from "vitest";
import type { CredentialKey } from "../../../src/core/credential.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";

/**
 * The key strings are a storage format: credentials written by an earlier
 * release are read at these exact keys after an upgrade. Pinned byte for
 * byte; a change here needs a migration.
 */
describe("RedisKeys", () => {
  const keys = new RedisKeys("tb");
  const app: CredentialKey = { appId: "wx-prod.1", kind: "access_token" };

  it("spells account-level keys exactly as the release before subjects did", () => {
    expect([keys.credential(app), keys.fence(app), keys.lock(app)]).toEqual([
      "tb:{wx-prod.1/access_token}:cred",
      "tb:{wx-prod.1/access_token}:fence",
      "tb:{wx-prod.1/access_token}:lock",
    ]);
    expect(keys.credential({ appId: "mp_2", kind: "jsapi_ticket" })).toBe(
      "tb:{mp_2/jsapi_ticket}:cred",
    );
    expect([keys.scheduleDue, keys.scheduleClaims, keys.updates]).toEqual([
      "tb:{schedule}:due",
      "tb:{schedule}:claims",
      "tb:updates",
    ]);
  });

  it("puts the subject in the hash tag: one slot per credential, apart from the account's and each other's", () => {
    const alice: CredentialKey = { appId: "wx-prod.1", kind: "user_token", subject: "oAbC_-9" };
    const bob: CredentialKey = { ...alice, subject: "oXyZ" };
    expect([keys.credential(alice), keys.fence(alice), keys.lock(alice)]).toEqual([
      "tb:{wx-prod.1/user_token/oAbC_-9}:cred",
      "tb:{wx-prod.1/user_token/oAbC_-9}:fence",
      "tb:{wx-prod.1/user_token/oAbC_-9}:lock",
    ]);
    const all = [alice, bob, { appId: alice.appId, kind: alice.kind }].flatMap((k) => [
      keys.credential(k),
      keys.fence(k),
      keys.lock(k),
    ]);
    expect(new Set(all).size).toBe(all.length);
    // Redis Cluster hashes only what is inside the first {...}: each credential's keys share it.
    const tag = (k: string) => /\{([^}]*)\}/.exec(k)?.[1];
    expect(
      new Set([alice].flatMap((k) => [keys.credential(k), keys.fence(k), keys.lock(k)]).map(tag)),
    ).toEqual(new Set(["wx-prod.1/user_token/oAbC_-9"]));
    expect(tag(keys.credential(bob))).not.toBe(tag(keys.credential(alice)));
  });

  it("names a code exchange by its digest, and reads credential keys back from a SCAN", () => {
    expect(keys.exchange("q1w2e3_-")).toBe("tb:oauth-exchange:q1w2e3_-");
    expect(keys.credentialPatterns("user_token")).toEqual([
      "tb:{*/user_token}:cred",
      "tb:{*/user_token/*}:cred",
    ]);
    const alice: CredentialKey = { appId: "wx-prod.1", kind: "user_token", subject: "oAbC_-9" };
    for (const k of [alice, app]) expect(keys.credentialKeyOf(keys.credential(k))).toEqual(k);
    for (const other of [keys.fence(app), keys.exchange("x"), "other:{a/access_token}:cred"])
      expect(keys.credentialKeyOf(other)).toBeUndefined();
    // A prefix is matched literally, glob characters and all.
    expect(new RedisKeys("a*b?[c]\\d").credentialPatterns("k")[0]).toBe(
      "a\\*b\\?\\[c\\]\\\\d:{*/k}:cred",
    );
  });
});
