import {
  type CredentialKey,
  keyId,
  type NewCredential,
  type StoredCredential,
} from "../../core/credential.js";
import type { CasResult, CredentialUpdate, TokenStore } from "../../core/ports/token-store.js";
import { type Clock, systemClock } from "../../shared/clock.js";
import { StoreUnavailableError } from "../../shared/errors.js";
import type { Logger } from "../../shared/logger.js";
import { planRestore } from "../restore-plan.js";
import { quitOrDisconnect, type RedisClient } from "./connection.js";
import {
  decodeFields,
  encodeCredential,
  fieldsFromList,
  RefusedCredentialError,
  type ValueSealing,
} from "./credential-codec.js";
import { HintRereader, logFields } from "./hint-rereader.js";
import type { RedisKeys } from "./keys.js";
import { loadScripts, type TokenScripts, type WriteReply } from "./scripts.js";
import { UpdateSubscriber } from "./update-subscriber.js";
import { isSealedValue, type ValueCipher } from "./value-cipher.js";

/** How long Redis keeps a credential after it expires, so it can still be read for diagnosis. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

export interface RedisTokenStoreOptions {
  /** The store takes it over: `close()` quits it. */
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** Kept after expiry before Redis deletes a credential; default 24 h. */
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

/**
 * The shared store for replicas. Each credential is one hash, written only by
 * the Lua scripts, which check the fence and the version, write, and publish
 * a hint ({id, version}: never the value or the kind's state) on
 * `keys.updates` in one atomic step. Every instance
 * (the writer included) hears the hint on its own subscriber connection and
 * re-reads the hash before telling its listeners: the store is the only
 * source of truth, so whoever can PUBLISH to Redis cannot hand a replica a
 * value (HintRereader).
 */
export class RedisTokenStore implements TokenStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #retentionMs: number;
  readonly #clock: Clock;
  readonly #cipher: ValueCipher | undefined;
  readonly #acceptPlaintextUntil: number | undefined;
  readonly #scripts: TokenScripts;
  readonly #rereader: HintRereader;
  readonly #subscriber: UpdateSubscriber;
  readonly #listeners = new Set<(update: CredentialUpdate) => void>();
  readonly #resyncListeners = new Set<() => void>();
  #closing: Promise<void> | undefined;

  constructor(o: RedisTokenStoreOptions) {
    this.#client = o.client;
    this.#keys = o.keys;
    this.#logger = o.logger.child({ component: "redis-token-store" });
    this.#retentionMs = o.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#clock = o.clock ?? systemClock;
    this.#cipher = o.cipher;
    this.#acceptPlaintextUntil = o.acceptPlaintextUntil;
    this.#scripts = loadScripts(o.client);
    this.#rereader = new HintRereader({
      read: (key) => this.get(key),
      deliver: (update) => this.#notify(update),
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
   * (RefusedCredentialError) reads as nothing, is logged, and is deleted
   * unless it changed meanwhile, so the next refresh replaces it.
   */
  async get(key: CredentialKey): Promise<StoredCredential | undefined> {
    const fields = await this.#command("read", () =>
      this.#client.hgetall(this.#keys.credential(key)),
    );
    return this.#decode(key, fields);
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
    const version = Math.max(expectedVersion + 1, minVersion);
    // Outside #command: a record no reader would accept is the caller's RangeError, not Redis's.
    const target = this.#writeTarget(key, { ...next, version });
    const reply = await this.#command("write", () =>
      this.#scripts.casCredential(this.#keys.credential(key), {
        ...target,
        expectedVersion,
        fence,
      }),
    );
    return this.#result(key, reply);
  }

  async restore(key: CredentialKey, known: StoredCredential): Promise<CasResult> {
    if (!Number.isSafeInteger(known.version) || known.version < 1)
      throw new RangeError("a restored credential needs a positive integer version");
    for (let round = 1; ; round++) {
      const stored = await this.get(key);
      const { put } = planRestore(stored, known);
      if (!put) return { written: false, reason: "version", current: stored };
      const target = this.#writeTarget(key, put);
      const reply = await this.#command("write", () =>
        this.#scripts.restoreCredential(this.#keys.credential(key), {
          ...target,
          expectedVersion: stored?.version ?? 0,
        }),
      );
      const result = await this.#result(key, reply);
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
      this.#resyncListeners.clear();
      await Promise.all([this.#subscriber.close(), quitOrDisconnect(this.#client)]);
    })();
    return this.#closing;
  }

  #writeTarget(key: CredentialKey, next: StoredCredential) {
    return {
      channel: this.#keys.updates,
      id: keyId(key),
      credential: encodeCredential(next, this.#sealing(key)),
      // Expired credentials stay readable for a while, for diagnosis.
      keepMs: Math.max(0, next.expiresAt - this.#clock.now()) + this.#retentionMs,
    };
  }

  #sealing(key: CredentialKey): ValueSealing {
    return {
      id: keyId(key),
      cipher: this.#cipher,
      acceptPlaintextUntil: this.#acceptPlaintextUntil,
      now: this.#clock.now(),
    };
  }

  async #decode(
    key: CredentialKey,
    fields: Record<string, string>,
  ): Promise<StoredCredential | undefined> {
    try {
      const credential = decodeFields(fields, this.#sealing(key));
      if (credential && this.#cipher && [fields.value, fields.state].some(isPlaintext))
        this.#logger.warn(
          { ...logFields(key), version: credential.version },
          "serving a credential stored unencrypted (security.acceptPlaintextUntil is open); it is sealed at its next write",
        );
      return credential;
    } catch (err) {
      if (!(err instanceof RefusedCredentialError)) throw err;
      // Loud: only a foreign writer (or a store written before keys were set) leaves these.
      this.#logger.error(
        { ...logFields(key), reason: err.reason, problem: err.message },
        "refused a stored credential; treating it as absent and deleting it so a refresh replaces it",
      );
      await this.#command("write", () =>
        this.#scripts.discardCredential(
          this.#keys.credential(key),
          fields.value ?? "",
          fields.version ?? "",
        ),
      );
      return undefined;
    }
  }

  async #result(key: CredentialKey, reply: WriteReply): Promise<CasResult> {
    const stored = await this.#decode(key, fieldsFromList(reply.fields));
    if (reply.status !== "written")
      return { written: false, reason: reply.status, current: stored };
    if (!stored) throw new Error("Redis wrote the credential but returned nothing");
    return { written: true, credential: stored };
  }

  async #command<T>(what: "read" | "write", run: () => Promise<T>): Promise<T> {
    if (this.#closing) throw new Error("the Redis token store is closed");
    try {
      return await run();
    } catch (err) {
      // A new error without `cause`: ioredis attaches the command and its
      // arguments (the value, for a write) to reply errors.
      const message = err instanceof Error ? err.message : String(err);
      if (isUnreachable(err))
        throw new StoreUnavailableError(`Redis is unreachable (credential ${what}): ${message}`);
      throw new Error(`Redis refused the credential ${what}: ${message}`);
    }
  }

  #notify(update: CredentialUpdate): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(update);
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

function isPlaintext(field: string | undefined): boolean {
  return field !== undefined && field !== "" && !isSealedValue(field);
}

/**
 * Reply errors that mean "not now" rather than "never": the node is loading,
 * is a replica after a failover, or the cluster has unserved slots.
 */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err.name !== "ReplyError") return true; // timeouts, retries exhausted, closed sockets
  return TRANSIENT_REPLY.test(err.message);
}
