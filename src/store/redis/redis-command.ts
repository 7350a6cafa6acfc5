import { StoreUnavailableError } from "../../shared/errors.js";

/**
 * Runs one Redis call for a store adapter and says what failed: an outage
 * (StoreUnavailableError, which callers ride out on what they hold) or a
 * refusal. The new error has no `cause`: ioredis attaches the command and its
 * arguments (a value, for a write) to reply errors.
 */
export async function redisCall<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (isUnreachable(err))
      throw new StoreUnavailableError(`Redis is unreachable (${what}): ${message}`);
    throw new Error(`Redis refused the ${what}: ${message}`);
  }
}

/**
 * Reply errors that mean "not now" rather than "never": the node is loading,
 * is a replica after a failover, or the cluster has unserved slots.
 */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err.name !== "ReplyError") return true; // timeouts, retries exhausted, closed sockets
  return TRANSIENT_REPLY.test(err.message);
}
