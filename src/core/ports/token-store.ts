import type { CredentialKey, NewCredential, StoredCredential } from "../credential.js";

/** The result of a compare-and-set write. */
export type CasResult =
  | { readonly written: true; readonly credential: StoredCredential }
  /**
   * Refused: another writer stored a different version first, or a holder
   * with a higher fence has written (this writer's lock lease was lost).
   * `current` is what is stored now.
   */
  | {
      readonly written: false;
      readonly reason: "version" | "fence";
      readonly current: StoredCredential | undefined;
    };

/** Whether a store keeps what it holds across a restart, as far as it can tell. */
export interface StoreDurability {
  /** True when a restart (or failover) of the store keeps every write it acknowledged. */
  readonly durable: boolean;
  /** For the operator: what was checked and, when not durable, what to change. */
  readonly detail: string;
}

export interface CredentialUpdate {
  readonly key: CredentialKey;
  readonly credential: StoredCredential;
}

/**
 * Where credentials live. The in-memory store serves a single node; the Redis
 * store lets many replicas share one authority. Writes are compare-and-set on
 * the version, so a writer working from a stale read can never replace a
 * newer credential.
 */
export interface TokenStore {
  get(key: CredentialKey): Promise<StoredCredential | undefined>;
  /**
   * Writes `next` if the stored version is `expectedVersion` (0 when nothing
   * is stored) and `fence` is not below the highest fence written for `key`;
   * then notifies subscribers everywhere. Its version is `expectedVersion + 1`,
   * or `minVersion` when higher: a writer that remembers a version the store
   * lost (it restarted empty) numbers its new value above it.
   */
  compareAndSet(
    key: CredentialKey,
    expectedVersion: number,
    fence: number,
    next: NewCredential,
    minVersion?: number,
  ): Promise<CasResult>;
  /**
   * Reconciles what a replica holds with the store, by planRestore's rule
   * (restore-plan.ts): puts `credential` back if the store lost it or holds
   * one WeChat issued earlier, and otherwise keeps the stored one, numbered
   * above `credential`'s version. Written: `credential`'s value is stored now;
   * refused: `current` is what is stored, and what the replica should adopt.
   * Over nothing the fence is 0, since the store's fence counters may have
   * been lost too.
   */
  restore(key: CredentialKey, credential: StoredCredential): Promise<CasResult>;
  /**
   * Calls `listener` after every successful write, on every node that shares
   * the store, with the credential as the store holds it (read back from the
   * store, never taken from the notification). Returns a function that
   * unsubscribes.
   */
  subscribe(listener: (update: CredentialUpdate) => void): () => void;
  /**
   * Deletes the credential if its stored version is still `expectedVersion`
   * (a grant re-created meanwhile stays); true if it was deleted. Every node
   * sharing the store then hears of it through `onDelete`. The key's fence
   * is kept, so a lock holder that started before cannot write it back.
   */
  delete(key: CredentialKey, expectedVersion: number): Promise<boolean>;
  /**
   * Calls `listener` on every node when a credential was deleted (confirmed
   * by reading the store, never taken from the notification alone).
   */
  onDelete(listener: (key: CredentialKey) => void): () => void;
  /**
   * Every stored credential of `kind` (for exports and backups), in no
   * particular order; values as `get` returns them.
   */
  entries(kind: string): AsyncIterable<CredentialUpdate>;
  /**
   * Whether this store keeps credentials across its own restart. Grants
   * (refresh tokens) cannot be re-fetched: the broker says loudly at start
   * when they would be lost.
   */
  durability(): Promise<StoreDurability>;
  /**
   * Calls `listener` when updates may have been missed (the pub/sub link to a
   * shared store was down): subscribers should re-read what they hold.
   */
  onResync(listener: () => void): () => void;
  close(): Promise<void>;
}
