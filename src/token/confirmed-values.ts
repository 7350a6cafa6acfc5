import { LRUCache } from "lru-cache";
import { type CredentialKey, keyId, type StoredCredential } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";

/** Confirmations remembered at most: users' credentials must not grow memory without bound. */
const MAX_CONFIRMED = 10_000;

/**
 * Values WeChat re-confirmed: a fetch returned the value already stored, and
 * asking again before `until` (CredentialRules.nextAttemptAfterSameValue)
 * would get it again. Meanwhile a caller finding that credential unservable
 * (its last seconds) takes it as it is instead of fetching: WeCom returns the
 * same token until it expires, and a crowd of callers re-asking used up the
 * hourly gettoken budget right before the fetch at the expiry needed it.
 */
export class ConfirmedValues {
  readonly #byId = new LRUCache<string, { value: string; until: number }>({ max: MAX_CONFIRMED });

  constructor(private readonly clock: Clock) {}

  confirmed(key: CredentialKey, value: string, until: number): void {
    this.#byId.set(keyId(key), { value, until });
  }

  /** True while `current` is the value last confirmed, still valid and not due to be asked about again. */
  holds(key: CredentialKey, current: StoredCredential): boolean {
    const id = keyId(key);
    const c = this.#byId.get(id);
    if (c === undefined) return false;
    const now = this.clock.now();
    if (c.value === current.value && now < c.until && now < current.expiresAt) return true;
    this.#byId.delete(id);
    return false;
  }
}
