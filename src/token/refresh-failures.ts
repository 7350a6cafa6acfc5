import { LRUCache } from "lru-cache";
import { type CredentialKey, keyId, parseKeyId } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";
import type { BrokerError } from "../shared/errors.js";

/**
 * Failed refreshes per credential: the short hold during which new runs fail
 * fast with the same error (so a crowd of callers cannot hammer WeChat while
 * it is down or rejecting the config), and the last failure until a success
 * (status and serve-stale reporting).
 */
/** Failures remembered for users' credentials at most: a client asking for random openids must not grow memory. */
const MAX_SUBJECT_FAILURES = 10_000;

type Hold = { error: BrokerError; until: number };
type Last = { at: number; message: string };

export class RefreshFailures {
  readonly #holds = new Map<string, Hold>();
  readonly #last = new Map<string, Last>();
  readonly #subjectHolds = new LRUCache<string, Hold>({ max: MAX_SUBJECT_FAILURES });
  readonly #subjectLast = new LRUCache<string, Last>({ max: MAX_SUBJECT_FAILURES });

  constructor(private readonly clock: Clock) {}

  /** The error new runs of `id` fail with while its hold lasts; an ended hold is dropped. */
  holding(id: string): BrokerError | undefined {
    const subject = parseKeyId(id)?.subject !== undefined;
    const held = subject ? this.#subjectHolds.get(id) : this.#holds.get(id);
    if (!held) return undefined;
    if (this.clock.now() < held.until) return held.error;
    if (subject) this.#subjectHolds.delete(id);
    else this.#holds.delete(id);
    return undefined;
  }

  /** A failed fetch: hold new runs for `holdMs` and remember the error. */
  failed(key: CredentialKey, error: BrokerError, holdMs: number): void {
    const id = keyId(key);
    const hold = { error, until: this.clock.now() + holdMs };
    const last = { at: this.clock.now(), message: error.message };
    if (key.subject === undefined) {
      this.#holds.set(id, hold);
      this.#last.set(id, last);
    } else {
      this.#subjectHolds.set(id, hold);
      this.#subjectLast.set(id, last);
    }
  }

  /** A fetch answered: the hold and the last failure end. */
  succeeded(key: CredentialKey): void {
    const id = keyId(key);
    this.#holds.delete(id);
    this.#last.delete(id);
    this.#subjectHolds.delete(id);
    this.#subjectLast.delete(id);
  }

  last(key: CredentialKey): Last | undefined {
    const id = keyId(key);
    return key.subject === undefined ? this.#last.get(id) : this.#subjectLast.get(id);
  }
}
