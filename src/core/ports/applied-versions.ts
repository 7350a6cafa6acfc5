import type { CredentialKey } from "../credential.js";

/**
 * Which version of a credential each client instance last said it uses
 * (AckToken), shared by every replica that shares the store: a client's acks
 * may reach any replica. Holders are opaque ids (client and instance); only
 * their counts leave the broker.
 */
export interface AppliedVersions {
  /**
   * `holder` uses `version` of `key` from now on; forgotten `ttlMs` after its
   * last record (a stopped process stops acknowledging).
   */
  record(key: CredentialKey, holder: string, version: number, ttlMs: number): Promise<void>;
  /** The live holders of `key`, counted per version. */
  count(key: CredentialKey): Promise<ReadonlyMap<number, number>>;
}
