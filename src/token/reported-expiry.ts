import { type CredentialKey, keyId, type StoredCredential } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";
import type { CredentialRules } from "./refresh-policy.js";

/**
 * What clients are told of a credential's life: when it stops working (for a
 * value the broker's next fetch rotates, at most the overlap after that
 * fetch, CredentialRules.reportedExpiresAt; never later than WeChat accepts
 * it), and when the broker will replace it (`refresh_after`).
 */
export class ReportedExpiry {
  /** Each credential version's planned refresh time, computed once (GetToken's hot path). */
  readonly #refreshAt = new WeakMap<StoredCredential, number>();

  constructor(
    private readonly clock: Clock,
    private readonly jitter: (id: string, version: number) => number,
  ) {}

  of(key: CredentialKey, rules: CredentialRules, credential: StoredCredential): number {
    if (!rules.rotatesOnEveryFetch) return credential.expiresAt;
    return rules.reportedExpiresAt(
      credential,
      this.#plannedRefresh(key, rules, credential),
      this.clock.now(),
    );
  }

  /**
   * When the broker will replace `credential`: its proactive refresh time,
   * the same on every replica (the jitter is a function of the version). A
   * kind WeChat re-issues only at its end (tickets, WeCom tokens: a refresh
   * before gets the same value back), and one refreshed on demand, is
   * replaced when the broker stops handing it out.
   */
  refreshAfter(key: CredentialKey, rules: CredentialRules, credential: StoredCredential): number {
    if (rules.spec.proactive && rules.spec.sameValueRetry === "converge")
      return this.#plannedRefresh(key, rules, credential);
    return Math.floor(credential.expiresAt - rules.safetyMs(credential));
  }

  #plannedRefresh(key: CredentialKey, rules: CredentialRules, credential: StoredCredential) {
    let at = this.#refreshAt.get(credential);
    if (at === undefined) {
      at = rules.refreshAt(credential, this.jitter(keyId(key), credential.version));
      this.#refreshAt.set(credential, at);
    }
    return at;
  }
}
