import { type CredentialKey, keyId, type StoredCredential } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";
import type { CredentialRules } from "./refresh-policy.js";

/**
 * When a credential stops working as far as clients are told: for a value the
 * broker's next fetch rotates, at most the overlap after that fetch
 * (CredentialRules.reportedExpiresAt), never later than WeChat accepts it.
 */
export class ReportedExpiry {
  /** Each credential version's planned rotation time, computed once (GetToken's hot path). */
  readonly #rotationAt = new WeakMap<StoredCredential, number>();

  constructor(
    private readonly clock: Clock,
    private readonly jitter: (id: string, version: number) => number,
  ) {}

  of(key: CredentialKey, rules: CredentialRules, credential: StoredCredential): number {
    if (!rules.rotatesOnEveryFetch) return credential.expiresAt;
    let rotationAt = this.#rotationAt.get(credential);
    if (rotationAt === undefined) {
      rotationAt = rules.refreshAt(credential, this.jitter(keyId(key), credential.version));
      this.#rotationAt.set(credential, rotationAt);
    }
    return rules.reportedExpiresAt(credential, rotationAt, this.clock.now());
  }
}
