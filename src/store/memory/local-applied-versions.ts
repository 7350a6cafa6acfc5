import { type CredentialKey, keyId } from "../../core/credential.js";
import type { AppliedVersions } from "../../core/ports/applied-versions.js";
import type { Clock } from "../../shared/clock.js";

/** Holders remembered per credential at most; the least recently acknowledged go first. */
const MAX_HOLDERS = 100_000;

/**
 * The single-node applied-version ledger: per credential, a Map of holder →
 * version and expiry, swept when counted. Insertion order is refreshed on
 * every record, so the oldest entry is the first to go when full.
 */
export class LocalAppliedVersions implements AppliedVersions {
  readonly #holders = new Map<string, Map<string, { version: number; until: number }>>();

  constructor(private readonly clock: Clock) {}

  async record(key: CredentialKey, holder: string, version: number, ttlMs: number): Promise<void> {
    const id = keyId(key);
    let holders = this.#holders.get(id);
    if (!holders) {
      holders = new Map();
      this.#holders.set(id, holders);
    }
    holders.delete(holder);
    if (holders.size >= MAX_HOLDERS) {
      const oldest = holders.keys().next().value;
      if (oldest !== undefined) holders.delete(oldest);
    }
    holders.set(holder, { version, until: this.clock.now() + ttlMs });
  }

  async count(key: CredentialKey): Promise<ReadonlyMap<number, number>> {
    const id = keyId(key);
    const holders = this.#holders.get(id);
    const counts = new Map<number, number>();
    if (!holders) return counts;
    const now = this.clock.now();
    for (const [holder, { version, until }] of holders) {
      if (until <= now) holders.delete(holder);
      else counts.set(version, (counts.get(version) ?? 0) + 1);
    }
    if (holders.size === 0) this.#holders.delete(id);
    return counts;
  }
}
