import { Code, ConnectError } from "@connectrpc/connect";
import {
  BrokerError,
  FailedPreconditionError,
  InvalidArgumentError,
  QuotaExhaustedError,
  ShuttingDownError,
  UnknownAppError,
  UpstreamConfigError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
} from "../shared/errors.js";
import { isStoreUnavailable } from "../store/store-unavailable.js";

/** Redis down and nothing held that could answer: a known condition, not a bug. */
const STORE_UNAVAILABLE_MESSAGE =
  "the broker's shared store (Redis) is unreachable and this replica holds nothing that answers the request; " +
  "retry with backoff or on another replica, and check the broker's Redis connection";

/**
 * The one place where domain errors become gRPC status codes. Connect codes
 * are numerically the gRPC codes, so both listeners use this mapping.
 * ConnectErrors (e.g. a deadline raised by the transport) pass through; any
 * other error is a bug: INTERNAL with a generic message, details only in logs.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof BrokerError)
    return new ConnectError(err.message, codeOf(err), undefined, undefined, err);
  // The store's and the lock's outage errors (their text may name Redis internals: not sent).
  if (isStoreUnavailable(err))
    return new ConnectError(STORE_UNAVAILABLE_MESSAGE, Code.Unavailable, undefined, undefined, err);
  return new ConnectError(
    "internal error in the token broker; see its logs",
    Code.Internal,
    undefined,
    undefined,
    err,
  );
}

function codeOf(err: BrokerError): Code {
  if (err instanceof InvalidArgumentError) return Code.InvalidArgument;
  if (err instanceof UnknownAppError) return Code.NotFound;
  if (err instanceof UpstreamConfigError) return Code.FailedPrecondition;
  if (err instanceof FailedPreconditionError) return Code.FailedPrecondition;
  if (err instanceof QuotaExhaustedError) return Code.ResourceExhausted;
  if (err instanceof UpstreamUnavailableError) return Code.Unavailable;
  // gRPC's code for an error from an error space this one does not know.
  if (err instanceof UpstreamRejectedError) return Code.Unknown;
  if (err instanceof ShuttingDownError) return Code.Unavailable;
  return Code.Internal;
}
