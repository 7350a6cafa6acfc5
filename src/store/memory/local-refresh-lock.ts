import type { CredentialKey } from "../../core/credential.js";
import type { Lease, LockResult, RefreshLock } from "../../core/ports/refresh-lock.js";

/**
 * The single-node lock: the process's own single flight already serialises
 * refreshes, so this always grants, with a local fence counter.
 */
export class LocalRefreshLock implements RefreshLock {
  #fence = 0;
  readonly #never = new AbortController().signal;

  async withLock<T>(_key: CredentialKey, fn: (lease: Lease) => Promise<T>): Promise<LockResult<T>> {
    return { acquired: true, value: await fn({ fence: ++this.#fence, signal: this.#never }) };
  }

  async close(): Promise<void> {}
}
