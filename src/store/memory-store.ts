import {
  type CredentialKey,
  keyId,
  type NewCredential,
  parseKeyId,
  type StoredCredential,
} from "../core/credential.js";
import type {
  CasResult,
  CredentialUpdate,
  StoreDurability,
  TokenStore,
} from "../core/ports/token-store.js";
import type { Logger } from "../shared/logger.js";
import { planRestore } from "./restore-plan.js";

/**
 * The embedded store for a single node: a Map. Nothing survives a restart,
 * and nothing is shared between processes; use the Redis store for replicas.
 * Records are kept whole, a kind's `state` included.
 */
export class MemoryTokenStore implements TokenStore {
  readonly #entries = new Map<string, StoredCredential>();
  readonly #fences = new Map<string, number>();
  readonly #listeners = new Set<(update: CredentialUpdate) => void>();
  readonly #deleteListeners = new Set<(key: CredentialKey) => void>();
  /** Versions of deleted credentials: a credential written again is numbered above them. */
  readonly #deletedVersions = new Map<string, number>();

  constructor(private readonly logger?: Logger) {}

  async get(key: CredentialKey): Promise<StoredCredential | undefined> {
    return this.#entries.get(keyId(key));
  }

  async compareAndSet(
    key: CredentialKey,
    expectedVersion: number,
    fence: number,
    next: NewCredential,
    minVersion = 0,
  ): Promise<CasResult> {
    const id = keyId(key);
    const current = this.#entries.get(id);
    if (fence < (this.#fences.get(id) ?? 0)) return { written: false, reason: "fence", current };
    if ((current?.version ?? 0) !== expectedVersion)
      return { written: false, reason: "version", current };
    const credential = withoutEmptyState({
      ...next,
      version: Math.max(expectedVersion + 1, minVersion, (this.#deletedVersions.get(id) ?? 0) + 1),
    });
    this.#entries.set(id, credential);
    this.#fences.set(id, fence);
    this.#notify(key, credential);
    return { written: true, credential };
  }

  #notify(key: CredentialKey, credential: StoredCredential): void {
    for (const listener of this.#listeners) {
      try {
        listener({ key, credential });
      } catch (err) {
        // One broken subscriber must not fail the write or starve the others.
        this.logger?.error({ err }, "token store subscriber threw");
      }
    }
  }

  async restore(key: CredentialKey, known: StoredCredential): Promise<CasResult> {
    const id = keyId(key);
    const current = this.#entries.get(id);
    // A deleted credential (a forgotten or void grant) is not brought back
    // by a replica that still held it.
    if (!current && known.version <= (this.#deletedVersions.get(id) ?? 0)) {
      return { written: false, reason: "version", current };
    }
    const planned = planRestore(current, known).put;
    if (!planned) return { written: false, reason: "version", current };
    const put = withoutEmptyState(planned);
    this.#entries.set(id, put);
    if (!current) this.#fences.set(id, 0);
    this.#notify(key, put);
    return put.value === known.value
      ? { written: true, credential: put }
      : { written: false, reason: "version", current: put };
  }

  subscribe(listener: (update: CredentialUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async delete(key: CredentialKey, expectedVersion: number): Promise<boolean> {
    const id = keyId(key);
    const current = this.#entries.get(id);
    if (current === undefined || current.version !== expectedVersion) return false;
    this.#entries.delete(id);
    this.#deletedVersions.set(id, current.version);
    for (const listener of this.#deleteListeners) {
      try {
        listener(key);
      } catch (err) {
        this.logger?.error({ err }, "token store subscriber threw");
      }
    }
    return true;
  }

  onDelete(listener: (key: CredentialKey) => void): () => void {
    this.#deleteListeners.add(listener);
    return () => this.#deleteListeners.delete(listener);
  }

  async *entries(kind: string): AsyncIterable<CredentialUpdate> {
    for (const [id, credential] of [...this.#entries]) {
      const key = parseKeyId(id);
      if (key?.kind === kind) yield { key, credential };
    }
  }

  async durability(): Promise<StoreDurability> {
    return {
      durable: false,
      detail:
        "the memory store keeps nothing across a restart; use store.type sqlite (one node) or redis with persistence (replicas)",
    };
  }

  /** A single process misses nothing, so there is never a resync. */
  onResync(_listener: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#deleteListeners.clear();
  }
}

/** An empty state is no state, as in the Redis store (which removes the field). */
function withoutEmptyState(c: StoredCredential): StoredCredential {
  if (c.state !== "") return c;
  const { state: _, ...rest } = c;
  return rest;
}
