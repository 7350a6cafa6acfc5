import {
  type CredentialKey,
  keyId,
  type NewCredential,
  type StoredCredential,
} from "../core/credential.js";
import type { CasResult, CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
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
      version: Math.max(expectedVersion + 1, minVersion),
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

  /** A single process misses nothing, so there is never a resync. */
  onResync(_listener: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

/** An empty state is no state, as in the Redis store (which removes the field). */
function withoutEmptyState(c: StoredCredential): StoredCredential {
  if (c.state !== "") return c;
  const { state: _, ...rest } = c;
  return rest;
}
