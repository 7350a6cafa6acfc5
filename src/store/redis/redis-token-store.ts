import {
  type CredentialKey,
  keyId,
  type NewCredential,
  type StoredCredential,
} from "../../core/credential.js";
import type {
  CasResult,
  CredentialUpdate,
  StoreDurability,
  TokenStore,
} from "../../core/ports/token-store.js";
import { type Clock, systemClock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import { planRestore } from "../restore-plan.js";
import { quitOrDisconnect, type RedisClient } from "./connection.js";
import { fieldsFromList, tombstoneVersion } from "./credential-codec.js";
import { CredentialRecords } from "./credential-records.js";
import { scanCredentialKeys } from "./credential-scan.js";
import { probeDurability } from "./durability-probe.js";
import { HintRereader, type Reread } from "./hint-rereader.js";
import type { RedisKeys } from "./keys.js";
import { redisCall } from "./redis-command.js";
import { loadScripts, type TokenScripts } from "./scripts.js";
import { UpdateSubscriber } from "./update-subscriber.js";
import type { ValueCipher } from "./value-cipher.js";

/** How long Redis keeps a credential after it expires, so it can still be read for diagnosis. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** A tombstone's shortest life: replicas that missed a delete have this long to hear of it. */
const TOMBSTONE_MIN_MS = 24 * 60 * 60 * 1000;

export interface RedisTokenStoreOptions {
  /** The store takes it over: `close()` quits it. */
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** Kept after expiry (or the end of its renewable window) before Redis deletes a credential; default 24 h. */
  readonly retentionMs?: number;
  /** Only used to compute when a credential may be deleted. */
  readonly clock?: Clock;
  /**
   * Seals credential values and kinds' states at rest. Absent: both are stored
   * in plaintext. Present: a plaintext value or state in the store is refused
   * (never served, deleted so the next refresh replaces it) unless
   * `acceptPlaintextUntil` is later.
   */
  readonly cipher?: ValueCipher;
  /** With a cipher: the end (epoch ms) of the migration window in which plaintext values are read. */
  readonly acceptPlaintextUntil?: number;
}

/** Rounds of read-plan-put in `restore` before giving up on a credential written to meanwhile. */
const RESTORE_ROUNDS = 5;
/** Writes over tombstones in one `compareAndSet` (each renumbered above the one found). */
const TOMBSTONE_ROUNDS = 3;

/**
 * The shared store for replicas. Each credential is one hash, written only by
 * the Lua scripts, which check the fence and the version, write, and publish
 * a hint ({id, version}: never the value or the kind's state) on
 * `keys.updates` in one atomic step. Every instance
 * (the writer included) hears the hint on its own subscriber connection and
 * re-reads the hash before telling its listeners: the store is the only
 * source of truth, so whoever can PUBLISH to Redis cannot hand a replica a
 * value (HintRereader). A delete leaves a tombstone in the hash (version
 * and fence; see delete-credential-1.lua) and is announced the same way.
 */
export class RedisTokenStore implements TokenStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #retentionMs: number;
  readonly #records: CredentialRecords;
  readonly #scripts: TokenScripts;
  readonly #rereader: HintRereader;
  readonly #subscriber: UpdateSubscriber;
  readonly #listeners = new Set<(update: CredentialUpdate) => void>();
  readonly #deleteListeners = new Set<(key: CredentialKey) => void>();
  readonly #resyncListeners = new Set<() => void>();
  #closing: Promise<void> | undefined;

  constructor(o: RedisTokenStoreOptions) {
    this.#client = o.client;
    this.#keys = o.keys;
    this.#logger = o.logger.child({ component: "redis-token-store" });
    this.#retentionMs = o.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#scripts = loadScripts(o.client);
    this.#records = new CredentialRecords({
      keys: o.keys,
      logger: this.#logger,
      clock: o.clock ?? systemClock,
      retentionMs: this.#retentionMs,
      cipher: o.cipher,
      acceptPlaintextUntil: o.acceptPlaintextUntil,
      discard: (key, value, version) =>
        this.#command("write", () =>
          this.#scripts.discardCredential(this.#keys.credential(key), value, version),
        ),
    });
    this.#rereader = new HintRereader({
      read: (key) => this.#reread(key),
      deliver: (update) => this.#tell(this.#listeners, update),
      deliverDelete: (key) => this.#tell(this.#deleteListeners, key),
      closed: () => this.#closing !== undefined,
      logger: this.#logger,
    });
    this.#subscriber = new UpdateSubscriber({
      client: o.client,
      channel: o.keys.updates,
      logger: this.#logger,
      onMessage: (message) => this.#rereader.hint(message),
      onResubscribed: () => this.#resync(),
    });
  }

  /**
   * The stored credential. A record this broker would never have written
   * reads as nothing and is deleted (CredentialRecords.decode); so does a
   * tombstone.
   */
  async get(key: CredentialKey): Promise<StoredCredential | undefined> {
    return this.#records.decode(key, await this.#fields(key));
  }

  async #fields(key: CredentialKey): Promise<Record<string, string>> {
    return this.#command("read", () => this.#client.hgetall(this.#keys.credential(key)));
  }

  /** What a hint's re-read finds: the credential, its tombstone, or nothing. */
  async #reread(key: CredentialKey): Promise<Reread> {
    const fields = await this.#fields(key);
    const deleted = tombstoneVersion(fields);
    if (deleted !== undefined) return { state: "deleted", version: deleted };
    const credential = await this.#records.decode(key, fields);
    return credential ? { state: "stored", credential } : { state: "absent" };
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
    let version = Math.max(expectedVersion + 1, minVersion);
    for (let round = 1; ; round++) {
      // Outside #command: a record no reader would accept is the caller's RangeError, not Redis's.
      const target = this.#records.writeTarget(key, { ...next, version });
      const reply = await this.#command("write", () =>
        this.#scripts.casCredential(this.#keys.credential(key), {
          ...target,
          expectedVersion,
          fence,
        }),
      );
      // Over a tombstone a write is numbered above the deleted version; the
      // version is sealed into the value, so the value is sealed again.
      const deleted = tombstoneVersion(fieldsFromList(reply.fields));
      if (reply.status !== "version" || deleted === undefined || expectedVersion !== 0)
        return this.#records.result(key, reply);
      if (deleted < version || round >= TOMBSTONE_ROUNDS) return this.#records.result(key, reply);
      version = deleted + 1;
    }
  }

  async restore(key: CredentialKey, known: StoredCredential): Promise<CasResult> {
    if (!Number.isSafeInteger(known.version) || known.version < 1)
      throw new RangeError("a restored credential needs a positive integer version");
    for (let round = 1; ; round++) {
      const stored = await this.get(key);
      const { put } = planRestore(stored, known);
      if (!put) return { written: false, reason: "version", current: stored };
      const target = this.#records.writeTarget(key, put);
      const reply = await this.#command("write", () =>
        this.#scripts.restoreCredential(this.#keys.credential(key), {
          ...target,
          expectedVersion: stored?.version ?? 0,
        }),
      );
      // Deleted at or above this version: a replica that missed the delete does not bring it back.
      const deleted = tombstoneVersion(fieldsFromList(reply.fields));
      if (reply.status === "version" && deleted !== undefined && put.version <= deleted)
        return { written: false, reason: "version", current: undefined };
      const result = await this.#records.result(key, reply);
      if (result.written)
        return result.credential.value === known.value
          ? result
          : { written: false, reason: "version", current: result.credential };
      // Written to between the read and the put: plan again on what is there now.
      if (round >= RESTORE_ROUNDS) return result;
    }
  }

  subscribe(listener: (update: CredentialUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async delete(key: CredentialKey, expectedVersion: number): Promise<boolean> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 1) return false;
    return this.#command("write", () =>
      this.#scripts.deleteCredential(this.#keys.credential(key), {
        channel: this.#keys.updates,
        id: keyId(key),
        expectedVersion,
        keepMs: Math.max(this.#retentionMs, TOMBSTONE_MIN_MS),
      }),
    );
  }

  onDelete(listener: (key: CredentialKey) => void): () => void {
    this.#deleteListeners.add(listener);
    return () => this.#deleteListeners.delete(listener);
  }

  async *entries(kind: string): AsyncIterable<CredentialUpdate> {
    if (this.#closing) throw new Error("the Redis token store is closed");
    const found = scanCredentialKeys(this.#client, this.#keys, kind)[Symbol.asyncIterator]();
    for (;;) {
      const step = await this.#command("read", () => found.next());
      if (step.done) return;
      const credential = await this.get(step.value); // tombstones read as nothing
      if (credential) yield { key: step.value, credential };
    }
  }

  durability(): Promise<StoreDurability> {
    return probeDurability(this.#client);
  }

  onResync(listener: () => void): () => void {
    this.#resyncListeners.add(listener);
    return () => this.#resyncListeners.delete(listener);
  }

  /**
   * Resolves once the subscriber connection has subscribed for the first
   * time (or the store closed); writes made before that are not heard by this
   * instance's listeners.
   */
  subscribed(): Promise<void> {
    return this.#subscriber.firstSubscribe;
  }

  /** Quits both connections; later calls return the same promise. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#listeners.clear();
      this.#deleteListeners.clear();
      this.#resyncListeners.clear();
      await Promise.all([this.#subscriber.close(), quitOrDisconnect(this.#client)]);
    })();
    return this.#closing;
  }

  async #command<T>(what: "read" | "write", run: () => Promise<T>): Promise<T> {
    if (this.#closing) throw new Error("the Redis token store is closed");
    return redisCall(`credential ${what}`, run);
  }

  #tell<T>(listeners: ReadonlySet<(event: T) => void>, event: T): void {
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (err) {
        // One broken subscriber must not starve the others or the connection.
        this.#logger.error({ err }, "token store subscriber threw");
      }
    }
  }

  #resync(): void {
    for (const listener of [...this.#resyncListeners]) {
      try {
        listener();
      } catch (err) {
        this.#logger.error({ err }, "token store resync listener threw");
      }
    }
  }
}
