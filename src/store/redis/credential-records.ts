import { type CredentialKey, keyId, type StoredCredential } from "../../core/credential.js";
import type { CasResult } from "../../core/ports/token-store.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import {
  decodeFields,
  encodeCredential,
  fieldsFromList,
  RefusedCredentialError,
  type ValueSealing,
} from "./credential-codec.js";
import { logFields } from "./hint-rereader.js";
import type { RedisKeys } from "./keys.js";
import type { WriteReply } from "./scripts.js";
import { isSealedValue, type ValueCipher } from "./value-cipher.js";

export interface CredentialRecordsOptions {
  readonly keys: RedisKeys;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly retentionMs: number;
  readonly cipher: ValueCipher | undefined;
  readonly acceptPlaintextUntil: number | undefined;
  /** Deletes a refused record unless it changed (discard-credential-1.lua). */
  discard(key: CredentialKey, value: string, version: string): Promise<unknown>;
}

/**
 * RedisTokenStore's records: what a write sends to the scripts (sealed, with
 * how long Redis keeps it) and what a read makes of a hash, refusals handled.
 */
export class CredentialRecords {
  constructor(private readonly o: CredentialRecordsOptions) {}

  writeTarget(key: CredentialKey, next: StoredCredential) {
    return {
      channel: this.o.keys.updates,
      id: keyId(key),
      credential: encodeCredential(next, this.#sealing(key)),
      // Kept while it can still be renewed (a grant outlives its token), then
      // a while longer, so expired credentials can be read for diagnosis.
      keepMs:
        Math.max(0, Math.max(next.expiresAt, next.renewableUntil ?? 0) - this.o.clock.now()) +
        this.o.retentionMs,
    };
  }

  /**
   * The credential a hash holds (nothing for a tombstone). A record this
   * broker would never have written (RefusedCredentialError) reads as
   * nothing, is logged, and is deleted unless it changed meanwhile, so the
   * next refresh replaces it.
   */
  async decode(
    key: CredentialKey,
    fields: Record<string, string>,
  ): Promise<StoredCredential | undefined> {
    try {
      const credential = decodeFields(fields, this.#sealing(key));
      if (credential && this.o.cipher && [fields.value, fields.state].some(isPlaintext))
        this.o.logger.warn(
          { ...logFields(key), version: credential.version },
          "serving a credential stored unencrypted (security.acceptPlaintextUntil is open); it is sealed at its next write",
        );
      return credential;
    } catch (err) {
      if (!(err instanceof RefusedCredentialError)) throw err;
      // Loud: only a foreign writer (or a store written before keys were set) leaves these.
      this.o.logger.error(
        { ...logFields(key), reason: err.reason, problem: err.message },
        fields.state === undefined
          ? "refused a stored credential; treating it as absent and deleting it so a refresh replaces it"
          : "refused a stored grant; treating it as absent and keeping it aside for 30 days (key suffix :refused) for an operator",
      );
      await this.o.discard(key, fields.value ?? "", fields.version ?? "");
      return undefined;
    }
  }

  /** A write script's reply as the port reports it. */
  async result(key: CredentialKey, reply: WriteReply): Promise<CasResult> {
    const stored = await this.decode(key, fieldsFromList(reply.fields));
    if (reply.status !== "written")
      return { written: false, reason: reply.status, current: stored };
    if (!stored) throw new Error("Redis wrote the credential but returned nothing");
    return { written: true, credential: stored };
  }

  #sealing(key: CredentialKey): ValueSealing {
    return {
      id: keyId(key),
      cipher: this.o.cipher,
      acceptPlaintextUntil: this.o.acceptPlaintextUntil,
      now: this.o.clock.now(),
    };
  }
}

function isPlaintext(field: string | undefined): boolean {
  return field !== undefined && field !== "" && !isSealedValue(field);
}
