import { CodedError, StoreUnavailableError } from "../../shared/errors.js";

/**
 * Failures of the Redis coordination (refresh lock and schedule). They are
 * not BrokerErrors: callers decide what an outage means (serve what they
 * hold, or fail with UpstreamUnavailableError), so these never reach a client
 * as such.
 */

/** Redis could not be asked for the lock: not contention, an outage (a StoreUnavailableError). */
export class LockStoreUnreachableError extends StoreUnavailableError {
  override readonly code = "LOCK_STORE_UNREACHABLE";
}

/**
 * The lease's signal reason when the lock could not be extended: another
 * holder may have it now, so the holder must not write (the store's fence
 * check refuses the write if it tries).
 */
export class LockLostError extends CodedError {
  readonly code = "LOCK_LOST";
}
