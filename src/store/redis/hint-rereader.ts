import { LRUCache } from "lru-cache";
import { type CredentialKey, keyId, type StoredCredential } from "../../core/credential.js";
import type { CredentialUpdate } from "../../core/ports/token-store.js";
import type { Logger } from "../../shared/logger.js";
import { decodeUpdateHint } from "./credential-codec.js";
import { ValueDecryptionError } from "./value-cipher.js";

/** What a re-read found: a credential, a tombstone (deleted at `version`), or nothing. */
export type Reread =
  | { readonly state: "stored"; readonly credential: StoredCredential }
  | { readonly state: "deleted"; readonly version: number }
  | { readonly state: "absent" };

export interface HintRereaderOptions {
  /** Reads a credential from the store (the hash), decoded and opened. */
  read(key: CredentialKey): Promise<Reread>;
  /** Hands a credential as re-read to the store's listeners. */
  deliver(update: CredentialUpdate): void;
  /** Tells the store's delete listeners of a credential the re-read found deleted. */
  deliverDelete(key: CredentialKey): void;
  /** True once the store is closing: nothing more is read. */
  closed(): boolean;
  readonly logger: Logger;
}

/**
 * Turns the update hints a RedisTokenStore hears into deliveries. A hint only
 * names a credential: it is re-read from the store, never taken from the
 * message, so whoever can PUBLISH cannot hand a replica a value. Re-reads of
 * one credential run one at a time (a hint during a read causes one more
 * read), so listeners see its versions in store order, and a record already
 * delivered is not delivered again. A deletion is told only when the re-read
 * finds the tombstone, once per deleted version: a forged hint costs a read.
 */
/** Credentials whose last delivery is remembered (a few per app, and recently written users). */
const MAX_REMEMBERED = 100_000;

export class HintRereader {
  /** Credentials being re-read after a hint, and those hinted again meanwhile. */
  readonly #rereading = new Set<string>();
  readonly #hintedAgain = new Set<string>();
  /**
   * The last record (or tombstone) re-read and delivered per credential.
   * Bounded: a replica hears every user's writes, not only the ones it holds.
   * A credential evicted here may be delivered once more; listeners keep
   * versions only going up, so a repeat changes nothing.
   */
  readonly #delivered = new LRUCache<string, StoredCredential | { readonly deleted: number }>({
    max: MAX_REMEMBERED,
  });

  constructor(private readonly o: HintRereaderOptions) {}

  /** A write was announced: re-read the credential (one read at a time per credential). */
  hint(message: string): void {
    let key: CredentialKey;
    try {
      key = decodeUpdateHint(message).key;
    } catch (err) {
      // The message is not logged: it may hold anything.
      this.o.logger.warn(
        { problem: err instanceof Error ? err.message : String(err), bytes: message.length },
        "ignoring a malformed credential update message",
      );
      return;
    }
    const id = keyId(key);
    if (this.#rereading.has(id)) {
      this.#hintedAgain.add(id);
      return;
    }
    this.#rereading.add(id);
    void this.#reread(key, id);
  }

  async #reread(key: CredentialKey, id: string): Promise<void> {
    try {
      do {
        this.#hintedAgain.delete(id);
        if (this.o.closed()) return;
        let found: Reread;
        try {
          found = await this.o.read(key);
        } catch (err) {
          this.#logReadFailure(key, err);
          continue;
        }
        const last = this.#delivered.get(id);
        if (found.state === "deleted") {
          if (last && "deleted" in last && last.deleted === found.version) continue;
          this.#delivered.set(id, { deleted: found.version });
          this.o.deliverDelete(key);
          continue;
        }
        if (found.state === "absent") continue;
        const { credential } = found;
        if (
          last &&
          "value" in last &&
          last.version === credential.version &&
          last.value === credential.value
        )
          continue;
        this.#delivered.set(id, credential);
        this.o.deliver({ key, credential });
      } while (this.#hintedAgain.has(id));
    } finally {
      this.#rereading.delete(id);
    }
  }

  #logReadFailure(key: CredentialKey, err: unknown): void {
    if (err instanceof ValueDecryptionError) {
      // Keys differ between replicas (a rotation half done): say which key.
      this.o.logger.error(
        { problem: err.message, keyId: err.keyId },
        "cannot decrypt a credential that was just written; ignoring the update",
      );
      return;
    }
    // Unreachable: the resync after reconnecting reads it again.
    this.o.logger.warn(
      { ...logFields(key), err: err instanceof Error ? err.message : String(err) },
      "could not read a credential after its update notice",
    );
  }
}

/** How a credential is named in log lines (a subject is an identifier, never a secret). */
export function logFields(key: CredentialKey): Record<string, string> {
  return key.subject === undefined
    ? { app: key.appId, kind: key.kind }
    : { app: key.appId, kind: key.kind, subject: key.subject };
}
