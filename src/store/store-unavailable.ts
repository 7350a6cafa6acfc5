/**
 * The shared store (or its lock) cannot be reached. Not a BrokerError: the
 * token manager decides what an outage means (serve what it holds, fetch on
 * its own as a last resort), so this never reaches a client as such.
 */
export class StoreUnavailableError extends Error {
  readonly code = "STORE_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True for any error that means "Redis is unreachable" (store or lock). */
export function isStoreUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === "STORE_UNAVAILABLE" || code === "LOCK_STORE_UNREACHABLE";
}
