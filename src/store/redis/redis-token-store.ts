import { type Clock, systemClock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import {
  type CredentialKey,
  keyId,
  type NewCredential,
  type StoredCredential,
} from "../../token/credential.js";
import { StoreUnavailableError } from "../store-unavailable.js";
import type { CasResult, CredentialUpdate, TokenStore } from "../token-store.js";
import { quitOrDisconnect, type RedisClient } from "./connection.js";
import {
  decodeFields,
  decodeUpdateMessage,
  encodeCredential,
  fieldsFromList,
  type ValueSealing,
} from "./credential-codec.js";
import type { RedisKeys } from "./keys.js";
import { loadScripts, type TokenScripts, type WriteReply } from "./scripts.js";
import { UpdateSubscriber } from "./update-subscriber.js";
import { type ValueCipher, ValueDecryptionError } from "./value-cipher.js";

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
   * Seals credential values at rest (hash fields and update messages).
   * Absent: values are stored in plaintext. Present: plaintext values already
   * stored are still read, and sealed at their next write.
   */
  readonly cipher?: ValueCipher;
}

/**
 * The shared store for replicas. Each credential is one hash, written only by
 * `lua/cas-credential-1.lua`, which checks the fence and the version, writes,
 * and publishes the new credential on `keys.updates` in one atomic step.
 * Every instance (the writer included) hears writes from its own subscriber
 * connection, so listeners see each credential's versions in write order.
 */
export class RedisTokenStore implements TokenStore {
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #retentionMs: number;
  readonly #clock: Clock;
  readonly #cipher: ValueCipher | undefined;
  readonly #scripts: TokenScripts;
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
    this.#scripts = loadScripts(o.client);
    this.#subscriber = new UpdateSubscriber({
      client: o.client,
      channel: o.keys.updates,
      logger: this.#logger,
      onMessage: (message) => this.#deliver(message),
      onResubscribed: () => this.#resync(),
    });
  }

  async get(key: CredentialKey): Promise<StoredCredential | undefined> {
    const fields = await this.#command("read", () =>
      this.#client.hgetall(this.#keys.credential(key)),
    );
    return decodeFields(fields, this.#sealing(key));
  }

  async compareAndSet(
    key: CredentialKey,
    expectedVersion: number,
    fence: number,
    next: NewCredential,
  ): Promise<CasResult> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0)
      throw new RangeError("expectedVersion must be a non-negative integer");
    if (!Number.isSafeInteger(fence) || fence < 0)
      throw new RangeError("fence must be a non-negative integer");
    const reply = await this.#command("write", () =>
      this.#scripts.casCredential(this.#keys.credential(key), {
        ...this.#writeTarget(key, next),
        expectedVersion,
        fence,
      }),
    );
    return casResult(reply, this.#sealing(key));
  }

  async restore(key: CredentialKey, credential: StoredCredential): Promise<CasResult> {
    if (!Number.isSafeInteger(credential.version) || credential.version < 1)
      throw new RangeError("a restored credential needs a positive integer version");
    const reply = await this.#command("write", () =>
      this.#scripts.restoreCredential(this.#keys.credential(key), {
        ...this.#writeTarget(key, credential),
        version: credential.version,
      }),
    );
    return casResult(reply, this.#sealing(key));
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

  #writeTarget(key: CredentialKey, next: NewCredential) {
    return {
      channel: this.#keys.updates,
      id: keyId(key),
      credential: encodeCredential(next, this.#sealing(key)),
      // Expired credentials stay readable for a while, for diagnosis.
      keepMs: Math.max(0, next.expiresAt - this.#clock.now()) + this.#retentionMs,
    };
  }

  #sealing(key: CredentialKey) {
    return { id: keyId(key), cipher: this.#cipher };
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

  #deliver(message: string): void {
    let update: CredentialUpdate;
    try {
      update = decodeUpdateMessage(message, this.#cipher);
    } catch (err) {
      if (err instanceof ValueDecryptionError) {
        // Keys differ between replicas (a rotation half done): say which key.
        this.#logger.error(
          { problem: err.message, keyId: err.keyId },
          "cannot decrypt a credential update message; ignoring it",
        );
        return;
      }
      // The message is not logged: it may hold a value.
      this.#logger.warn(
        { problem: err instanceof Error ? err.message : String(err), bytes: message.length },
        "ignoring a malformed credential update message",
      );
      return;
    }
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

function casResult(reply: WriteReply, sealing: ValueSealing): CasResult {
  const stored = decodeFields(fieldsFromList(reply.fields), sealing);
  if (reply.status !== "written") return { written: false, reason: reply.status, current: stored };
  if (!stored) throw new Error("Redis wrote the credential but returned nothing");
  return { written: true, credential: stored };
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
