import {
  type CredentialKey,
  keyId,
  parseKeyId,
  type StoredCredential,
} from "../core/credential.js";

/**
 * This replica's copy of the credentials it has seen (L1): the newest version
 * of each, and the value each replaced (WeChat still accepts it for a while,
 * so it is scrubbed from WeChat's text too). Versions only go up.
 */
export class CredentialCache {
  readonly #held = new Map<string, StoredCredential>();
  readonly #previous = new Map<string, string>();

  get(key: CredentialKey): StoredCredential | undefined {
    return this.#held.get(keyId(key));
  }

  /** Keeps `credential` if it is newer than what is held; returns true when it was. */
  offer(key: CredentialKey, credential: StoredCredential): boolean {
    const id = keyId(key);
    const known = this.#held.get(id);
    if (known && known.version >= credential.version) return false;
    if (known && known.value !== credential.value) this.#previous.set(id, known.value);
    this.#held.set(id, credential);
    return true;
  }

  /** Forgets every credential of an account (it was removed from the config). */
  forgetAccount(appId: string): void {
    for (const id of [...this.#held.keys()]) {
      if (parseKeyId(id)?.appId !== appId) continue;
      this.#held.delete(id);
      this.#previous.delete(id);
    }
  }

  /** Every credential value of an account held here, current and previous. */
  knownValues(appId: string): string[] {
    const out: string[] = [];
    for (const [id, credential] of this.#held) {
      if (parseKeyId(id)?.appId !== appId) continue;
      out.push(credential.value);
      const previous = this.#previous.get(id);
      if (previous !== undefined) out.push(previous);
    }
    return out;
  }

  entries(): Array<{ key: CredentialKey; credential: StoredCredential }> {
    const out: Array<{ key: CredentialKey; credential: StoredCredential }> = [];
    for (const [id, credential] of this.#held) {
      const key = parseKeyId(id);
      if (key) out.push({ key, credential });
    }
    return out;
  }

  /** The raw map, for resync with the store (keyed by keyId). */
  get map(): ReadonlyMap<string, StoredCredential> {
    return this.#held;
  }
}
