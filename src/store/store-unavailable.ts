import { StoreUnavailableError } from "../shared/errors.js";

// The class lives in the one errors module; store adapters import it from here.
export { StoreUnavailableError };

/** True for any error that means "Redis is unreachable" (store, ledger or lock). */
export function isStoreUnavailable(err: unknown): err is StoreUnavailableError {
  return err instanceof StoreUnavailableError;
}
