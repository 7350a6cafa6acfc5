import { LRUCache } from "lru-cache";
import {
  type CredentialKey,
  keyId,
  type NewCredential,
  parseKeyId,
  type StoredCredential,
} from "../../core/credential.js";
import type {
  CasResult,
  CredentialUpdate,
  StoreDurability,
  TokenStore,
} from "../../core/ports/token-store.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import { planRestore } from "../restore-plan.js";
import type { ValueCipher } from "../sealing/value-cipher.js";
import { CredentialTable } from "./credential-table.js";
import {
  type CredentialRow,
  decodeRow,
  encodeRow,
  holdsPlaintext,
  RefusedRowError,
} from "./row-codec.js";
import { sqliteCall } from "./sqlite-errors.js";
import type { SqliteFile } from "./sqlite-file.js";

/** How long a credential is kept once it can neither be used nor renewed, for diagnosis. */
export const DEFAULT_RETENTION_MS = 24 * 3_600_000;
/** How often rows past their retention are purged. */
export const DEFAULT_PURGE_EVERY_MS = 10 * 60_000;
/** Rows read per query by `entries`, so an export of a million grants reads a page at a time. */
const PAGE_ROWS = 500;

export interface SqliteTokenStoreOptions {
  /** Shared with the exchange ledger; whoever opened it closes it, after the store. */
  readonly file: SqliteFile;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Seals values and states at rest; absent: stored as they are. */
  readonly cipher?: ValueCipher | undefined;
  /** With a cipher: until then (epoch ms), rows stored unencrypted are still read. */
  readonly acceptPlaintextUntil?: number | undefined;
  readonly retentionMs?: number;
  readonly purgeEveryMs?: number;
}

/**
 * The durable store of a single node: credentials in an SQLite file
 * (SqliteFile), with the memory store's semantics (memory-store.ts):
 * compare-and-set on version and fence, restore by planRestore, deletes
 * that leave a tombstone. Writes are transactions, committed to disk before
 * they resolve. One process owns the file, so notifications are this
 * process's own and there is never a resync.
 *
 * Fences are kept in memory, not in the file: they order lock holders, and
 * the holders of a previous process are gone with it (the file's lock says
 * so), while this process's LocalRefreshLock numbers from 1 again.
 *
 * A row is kept until max(expiresAt, renewableUntil) plus the retention,
 * then purged (every `purgeEveryMs`, on the injected clock).
 */
export class SqliteTokenStore implements TokenStore {
  readonly #file: SqliteFile;
  readonly #table: CredentialTable;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #sealing: {
    cipher?: ValueCipher | undefined;
    acceptPlaintextUntil?: number | undefined;
  };
  readonly #retentionMs: number;
  readonly #purgeEveryMs: number;
  // Bounded like the L1: one process owns the file, and its single flight
  // already serialises refreshes, so a forgotten fence (back to 0) only
  // relaxes a check a second writer could not fail anyway.
  readonly #fences = new LRUCache<string, number>({ max: 100_000 });
  readonly #listeners = new Set<(update: CredentialUpdate) => void>();
  readonly #deleteListeners = new Set<(key: CredentialKey) => void>();
  #cancelPurge: (() => void) | undefined;
  #closed = false;

  constructor(o: SqliteTokenStoreOptions) {
    this.#file = o.file;
    this.#table = new CredentialTable(o.file.db);
    this.#logger = o.logger.child({ component: "sqlite-token-store" });
    this.#clock = o.clock;
    this.#sealing = { cipher: o.cipher, acceptPlaintextUntil: o.acceptPlaintextUntil };
    this.#retentionMs = o.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#purgeEveryMs = o.purgeEveryMs ?? DEFAULT_PURGE_EVERY_MS;
    this.purge();
    this.#schedulePurge();
  }

  async get(key: CredentialKey): Promise<StoredCredential | undefined> {
    return this.#call("read", () => this.#current(key));
  }

  async compareAndSet(
    key: CredentialKey,
    expectedVersion: number,
    fence: number,
    next: NewCredential,
    minVersion = 0,
  ): Promise<CasResult> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0)
      throw new RangeError("expectedVersion must be a non-negative integer");
    if (!Number.isSafeInteger(fence) || fence < 0)
      throw new RangeError("fence must be a non-negative integer");
    const id = keyId(key);
    const result = this.#call("write", () =>
      this.#file.db
        .transaction((): CasResult => {
          const current = this.#current(key);
          if (fence < (this.#fences.get(id) ?? 0))
            return { written: false, reason: "fence", current };
          if ((current?.version ?? 0) !== expectedVersion)
            return { written: false, reason: "version", current };
          const version = Math.max(
            expectedVersion + 1,
            minVersion,
            this.#table.deletedVersion(id) + 1,
          );
          const credential = this.#put(key, withoutEmptyState({ ...next, version }));
          this.#fences.set(id, fence);
          return { written: true, credential };
        })
        .immediate(),
    );
    if (result.written) this.#notify(key, result.credential);
    return result;
  }

  async restore(key: CredentialKey, known: StoredCredential): Promise<CasResult> {
    if (!Number.isSafeInteger(known.version) || known.version < 1)
      throw new RangeError("a restored credential needs a positive integer version");
    const id = keyId(key);
    const put = this.#call("write", () =>
      this.#file.db
        .transaction(() => {
          const current = this.#current(key);
          // A deleted credential (a forgotten or void grant) is not brought
          // back by a replica that still held it.
          if (!current && known.version <= this.#table.deletedVersion(id))
            return { current, put: undefined };
          const planned = planRestore(current, known).put;
          if (!planned) return { current, put: undefined };
          const written = this.#put(key, withoutEmptyState(planned));
          if (!current) this.#fences.set(id, 0);
          return { current, put: written };
        })
        .immediate(),
    );
    if (!put.put) return { written: false, reason: "version", current: put.current };
    this.#notify(key, put.put);
    return put.put.value === known.value
      ? { written: true, credential: put.put }
      : { written: false, reason: "version", current: put.put };
  }

  subscribe(listener: (update: CredentialUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async delete(key: CredentialKey, expectedVersion: number): Promise<boolean> {
    const id = keyId(key);
    const deleted = this.#call("write", () =>
      this.#file.db
        .transaction(() => {
          const row = this.#table.read(id);
          if (row === undefined || row.version !== expectedVersion) return false;
          this.#table.remove(id);
          // The fence stays (in memory): a holder that started before cannot write it back.
          this.#table.bury(id, row.version, row.keep_until);
          return true;
        })
        .immediate(),
    );
    if (deleted) this.#each(this.#deleteListeners, (listener) => listener(key));
    return deleted;
  }

  onDelete(listener: (key: CredentialKey) => void): () => void {
    this.#deleteListeners.add(listener);
    return () => this.#deleteListeners.delete(listener);
  }

  async *entries(kind: string): AsyncIterable<CredentialUpdate> {
    // Page by id rather than hold a cursor open across yields: the connection
    // serves every other call meanwhile.
    for (let after = ""; ; ) {
      const rows = this.#call("read", () => this.#table.page(kind, after, PAGE_ROWS));
      for (const row of rows) {
        const key = parseKeyId(row.id);
        const credential = key && this.#call("read", () => this.#decode(key, row));
        if (key && credential) yield { key, credential };
      }
      const last = rows.at(-1);
      if (last === undefined || rows.length < PAGE_ROWS) return;
      after = last.id;
    }
  }

  async durability(): Promise<StoreDurability> {
    return this.#file.durability();
  }

  /** One process owns the file: it misses nothing, so there is never a resync. */
  onResync(_listener: () => void): () => void {
    return () => {};
  }

  /**
   * Deletes rows (and tombstones) whose retention has passed; returns how
   * many rows went. Runs at open and every `purgeEveryMs`.
   */
  purge(): number {
    const purged = this.#call("write", () => this.#table.purge(this.#clock.now()));
    if (purged > 0) this.#logger.info({ purged }, "purged credentials past their retention");
    return purged;
  }

  /** Stops the purge and forgets listeners; the file is closed by whoever opened it. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelPurge?.();
    this.#listeners.clear();
    this.#deleteListeners.clear();
  }

  #schedulePurge(): void {
    this.#cancelPurge = this.#clock.schedule(() => {
      if (this.#closed || this.#file.closed) return;
      try {
        this.purge();
      } catch (err) {
        this.#logger.error({ err }, "purging the SQLite store failed; trying again later");
      }
      this.#schedulePurge();
    }, this.#purgeEveryMs);
  }

  /**
   * The stored credential. A row stored unencrypted while keys
   * are configured reads as nothing, is logged and deleted, so the next
   * refresh replaces it (as the Redis store does).
   */
  #current(key: CredentialKey): StoredCredential | undefined {
    const row = this.#table.read(keyId(key));
    return row && this.#decode(key, row);
  }

  #decode(key: CredentialKey, row: CredentialRow): StoredCredential | undefined {
    try {
      const credential = decodeRow(row, this.#sealing, this.#clock.now());
      if (this.#sealing.cipher && holdsPlaintext(row))
        this.#logger.warn(
          { app: key.appId, kind: key.kind, version: row.version },
          "serving a credential stored unencrypted (security.acceptPlaintextUntil is open); it is sealed at its next write",
        );
      return credential;
    } catch (err) {
      if (!(err instanceof RefusedRowError)) throw err;
      // A grant (a refresh token in its state) cannot be re-fetched: never deleted on read.
      const grant = row.state !== null && row.state !== undefined;
      this.#logger.error(
        { app: key.appId, kind: key.kind, problem: err.message },
        grant
          ? "refused a stored grant; treating it as absent and keeping it aside (id suffix #refused) for an operator"
          : "refused a stored credential; treating it as absent and deleting it so a refresh replaces it",
      );
      if (grant) this.#table.putAside(row.id);
      else this.#table.remove(row.id);
      return undefined;
    }
  }

  #put(key: CredentialKey, credential: StoredCredential): StoredCredential {
    const id = keyId(key);
    const keepUntil =
      Math.max(credential.expiresAt, credential.renewableUntil ?? 0) + this.#retentionMs;
    this.#table.put(encodeRow(id, key.kind, credential, keepUntil, this.#sealing));
    this.#table.unbury(id);
    return credential;
  }

  #call<T>(what: "read" | "write", run: () => T): T {
    if (this.#closed || this.#file.closed) throw new Error("the SQLite token store is closed");
    return sqliteCall(`credential ${what}`, this.#file.path, run);
  }

  #notify(key: CredentialKey, credential: StoredCredential): void {
    this.#each(this.#listeners, (listener) => listener({ key, credential }));
  }

  /** One broken subscriber must not fail the write or starve the others. */
  #each<L>(listeners: Set<L>, call: (listener: L) => void): void {
    for (const listener of [...listeners]) {
      try {
        call(listener);
      } catch (err) {
        this.#logger.error({ err }, "token store subscriber threw");
      }
    }
  }
}

/** An empty state is no state, as in the memory and Redis stores. */
function withoutEmptyState(c: StoredCredential): StoredCredential {
  if (c.state !== "") return c;
  const { state: _, ...rest } = c;
  return rest;
}
