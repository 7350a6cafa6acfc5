import type { CredentialKey } from "../credential.js";

/** What a lock holder gets: a fencing token and a signal that fires if the lock is lost. */
export interface Lease {
  /**
   * Strictly increasing per credential across all holders. Writes carry it,
   * and the store refuses a write whose fence is below the highest it has
   * seen, so a holder paused past its lease can never overwrite newer data.
   */
  readonly fence: number;
  /** Aborted when the lock could not be extended (the lease may be gone). */
  readonly signal: AbortSignal;
}

export type LockResult<T> =
  | { readonly acquired: true; readonly value: T }
  /**
   * Another holder has it. `leaseRemainingMs`: the longest its lease can
   * still last unless extended (a dead holder's lock is free after that).
   */
  | { readonly acquired: false; readonly leaseRemainingMs: number };

/**
 * The cluster-wide refresh lock of a credential. It is an efficiency lock:
 * it keeps replicas from fetching the same credential twice (each fetch of a
 * classic token rotates it). Correctness comes from the store's fence and
 * version checks, not from the lock.
 */
export interface RefreshLock {
  /**
   * Runs `fn` while holding the lock of `key`, extending it as needed.
   * Resolves `{acquired: false, leaseRemainingMs}` at once if another holder has it.
   */
  withLock<T>(key: CredentialKey, fn: (lease: Lease) => Promise<T>): Promise<LockResult<T>>;
  close(): Promise<void>;
}
