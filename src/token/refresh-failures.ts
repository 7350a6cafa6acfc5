import { type CredentialKey, keyId } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";
import type { BrokerError } from "../shared/errors.js";

/**
 * Failed refreshes per credential: the short hold during which new runs fail
 * fast with the same error (so a crowd of callers cannot hammer WeChat while
 * it is down or rejecting the config), and the last failure until a success
 * (status and serve-stale reporting).
 */
export class RefreshFailures {
  readonly #holds = new Map<string, { error: BrokerError; until: number }>();
  readonly #last = new Map<string, { at: number; message: string }>();

  constructor(private readonly clock: Clock) {}

  /** The error new runs of `id` fail with while its hold lasts; an ended hold is dropped. */
  holding(id: string): BrokerError | undefined {
    const held = this.#holds.get(id);
    if (!held) return undefined;
    if (this.clock.now() < held.until) return held.error;
    this.#holds.delete(id);
    return undefined;
  }

  /** A failed fetch: hold new runs for `holdMs` and remember the error. */
  failed(key: CredentialKey, error: BrokerError, holdMs: number): void {
    this.#holds.set(keyId(key), { error, until: this.clock.now() + holdMs });
    this.#last.set(keyId(key), { at: this.clock.now(), message: error.message });
  }

  /** A fetch answered: the hold and the last failure end. */
  succeeded(key: CredentialKey): void {
    this.#holds.delete(keyId(key));
    this.#last.delete(keyId(key));
  }

  last(key: CredentialKey): { at: number; message: string } | undefined {
    return this.#last.get(keyId(key));
  }
}
