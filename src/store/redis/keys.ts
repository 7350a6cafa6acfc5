import { type CredentialKey, keyId, parseKeyId } from "../../core/credential.js";

/**
 * Every Redis key and channel the broker uses, under one configurable prefix.
 * The per-credential keys share a hash tag, the credential's keyId
 * (`{app/kind}`, or `{app/kind/subject}` for kinds with a subject), and the
 * schedule's keys share theirs, so each multi-key script touches one Redis
 * Cluster slot and each credential may live on its own. Account-level keys
 * are spelled as earlier releases wrote them, so their credentials stay
 * readable across an upgrade. Keys carry the broker's app id, the kind and
 * the subject (an openid or appid: an identifier); never a secret.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /**
   * Hash: value, version, fence, fetchedAt, expiresAt, previousValidUntil,
   * state, renewableUntil; or a tombstone (version, fence, deleted).
   */
  credential(key: CredentialKey): string {
    return `${this.prefix}:{${keyId(key)}}:cred`;
  }

  /**
   * SCAN MATCH patterns covering every credential hash of `kind` (with and
   * without a subject). They may match a few keys of other kinds: check each
   * with `credentialKeyOf`.
   */
  credentialPatterns(kind: string): string[] {
    const prefix = escapeGlob(this.prefix);
    const k = escapeGlob(kind);
    return [`${prefix}:{*/${k}}:cred`, `${prefix}:{*/${k}/*}:cred`];
  }

  /** The credential a `credential(...)` key names, or undefined for any other key. */
  credentialKeyOf(redisKey: string): CredentialKey | undefined {
    const head = `${this.prefix}:{`;
    const tail = "}:cred";
    if (!redisKey.startsWith(head) || !redisKey.endsWith(tail)) return undefined;
    return parseKeyId(redisKey.slice(head.length, redisKey.length - tail.length));
  }

  /**
   * String: a code exchange's claim or outcome (RedisExchangeLedger). `id` is
   * a digest of the app and the code, never the code.
   */
  exchange(id: string): string {
    return `${this.prefix}:oauth-exchange:${id}`;
  }

  /**
   * Hash: holder (client/instance) → "version:expiresAtMs", the version each
   * client instance last acknowledged (RedisAppliedVersions); the key expires
   * when nobody acknowledges any more.
   */
  applied(key: CredentialKey): string {
    return `${this.prefix}:{${keyId(key)}}:applied`;
  }

  /** Counter: the last fencing token handed to a refresh-lock holder. */
  fence(key: CredentialKey): string {
    return `${this.prefix}:{${keyId(key)}}:fence`;
  }

  /** The refresh lock (redlock resource). */
  lock(key: CredentialKey): string {
    return `${this.prefix}:{${keyId(key)}}:lock`;
  }

  /** Sorted set: credential id → when its proactive refresh is due (epoch ms). */
  get scheduleDue(): string {
    return `${this.prefix}:{schedule}:due`;
  }

  /** Sorted set: credential id → when the replica that claimed its refresh loses the claim. */
  get scheduleClaims(): string {
    return `${this.prefix}:{schedule}:claims`;
  }

  /** Pub/sub channel carrying every credential write. */
  get updates(): string {
    return `${this.prefix}:updates`;
  }
}

/** `s` matched literally by SCAN's glob (a prefix may hold *, ?, [, ] or a backslash). */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
