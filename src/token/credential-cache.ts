import { LRUCache } from "lru-cache";
import {
  type CredentialKey,
  keyId,
  parseKeyId,
  type StoredCredential,
} from "../core/credential.js";

/** Subject credentials (users' tokens) held at most, by default; the store holds the rest. */
export const DEFAULT_MAX_SUBJECT_ENTRIES = 100_000;

/**
 * This replica's copy of the credentials it has seen (L1): the newest version
 * of each, and the value each replaced (WeChat still accepts it for a while,
 * so it is scrubbed from WeChat's text too). Versions only go up, until a
 * credential is forgotten (a deleted grant).
 *
 * Account-level credentials (a handful per app) are all kept. Subject
 * credentials (one per user: millions) are kept in an LRU of bounded size:
 * one evicted is read from the store again on its next use, so memory stays
 * bounded however many users exist.
 */
export class CredentialCache {
  readonly #held = new Map<string, StoredCredential>();
  readonly #previous = new Map<string, string>();
  readonly #subjects: LRUCache<string, StoredCredential>;

  constructor(maxSubjectEntries = DEFAULT_MAX_SUBJECT_ENTRIES) {
    this.#subjects = new LRUCache({ max: Math.max(1, maxSubjectEntries) });
  }

  get(key: CredentialKey): StoredCredential | undefined {
    const id = keyId(key);
    return key.subject === undefined ? this.#held.get(id) : this.#subjects.get(id);
  }

  /** Keeps `credential` if it is newer than what is held; returns true when it was. */
  offer(key: CredentialKey, credential: StoredCredential): boolean {
    const id = keyId(key);
    if (key.subject !== undefined) {
      const known = this.#subjects.peek(id);
      if (known && known.version >= credential.version) return false;
      this.#subjects.set(id, credential);
      return true;
    }
    const known = this.#held.get(id);
    if (known && known.version >= credential.version) return false;
    if (known && known.value !== credential.value) this.#previous.set(id, known.value);
    this.#held.set(id, credential);
    return true;
  }

  /** Forgets one credential (deleted from the store): a later one may have any version. */
  forget(key: CredentialKey): void {
    const id = keyId(key);
    this.#held.delete(id);
    this.#previous.delete(id);
    this.#subjects.delete(id);
  }

  /** Forgets every credential of an account (it was removed from the config). */
  forgetAccount(appId: string): void {
    for (const id of [...this.#held.keys(), ...this.#subjects.keys()]) {
      if (parseKeyId(id)?.appId !== appId) continue;
      this.#held.delete(id);
      this.#previous.delete(id);
      this.#subjects.delete(id);
    }
  }

  /**
   * The account-level credential values of an account held here, current and
   * previous: what WeChat's text is scrubbed of. Users' tokens are not
   * scanned (millions); the generic scrubber catches long opaque runs.
   */
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

  /** The account-level credentials held (status, metrics); users' tokens are only counted. */
  entries(): Array<{ key: CredentialKey; credential: StoredCredential }> {
    const out: Array<{ key: CredentialKey; credential: StoredCredential }> = [];
    for (const [id, credential] of this.#held) {
      const key = parseKeyId(id);
      if (key) out.push({ key, credential });
    }
    return out;
  }

  /** Every credential held, by keyId, for resync with the store. */
  *all(): IterableIterator<[string, StoredCredential]> {
    yield* this.#held;
    yield* this.#subjects.entries();
  }

  /** Subject credentials held now (bounded by the LRU's size). */
  get subjectCount(): number {
    return this.#subjects.size;
  }
}
