import type { CredentialKey } from "../../core/credential.js";
import type { AppliedVersions } from "../../core/ports/applied-versions.js";
import type { Clock } from "../../shared/clock.js";
import type { RedisClient } from "./connection.js";
import type { RedisKeys } from "./keys.js";
import { redisCall } from "./redis-command.js";

/**
 * The applied-version ledger shared by replicas: one hash per credential
 * (`RedisKeys.applied`), holder → "version:expiresAtMs". A record also
 * extends the hash's own expiry, so a credential nobody acknowledges leaves
 * no key behind; expired holders are removed when counted (one that
 * acknowledges again in between is counted again from its next record).
 * Growth is bounded by the clients' rate limits times a holder's lifetime.
 */
export class RedisAppliedVersions implements AppliedVersions {
  constructor(
    private readonly o: { readonly client: RedisClient; readonly keys: RedisKeys; clock: Clock },
  ) {}

  async record(key: CredentialKey, holder: string, version: number, ttlMs: number): Promise<void> {
    const redisKey = this.o.keys.applied(key);
    const until = this.o.clock.now() + ttlMs;
    const replies = await redisCall("applied-version record", () =>
      this.o.client
        .multi()
        .hset(redisKey, holder, `${version}:${until}`)
        .pexpire(redisKey, Math.ceil(ttlMs))
        .exec(),
    );
    const failed = replies?.find(([err]) => err)?.[0];
    if (failed) throw new Error(`Redis refused the applied-version record: ${failed.message}`);
  }

  async count(key: CredentialKey): Promise<ReadonlyMap<number, number>> {
    const redisKey = this.o.keys.applied(key);
    const all = await redisCall("applied-version read", () => this.o.client.hgetall(redisKey));
    const now = this.o.clock.now();
    const counts = new Map<number, number>();
    const expired: string[] = [];
    for (const [holder, entry] of Object.entries(all)) {
      const [version, until] = entry.split(":").map(Number);
      if (version === undefined || !Number.isSafeInteger(version) || !((until ?? 0) > now))
        expired.push(holder);
      else counts.set(version, (counts.get(version) ?? 0) + 1);
    }
    if (expired.length > 0) {
      await redisCall("applied-version sweep", () => this.o.client.hdel(redisKey, ...expired));
    }
    return counts;
  }
}
