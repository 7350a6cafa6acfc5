import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  BrokerError,
  type BrokerErrorCode,
  REAUTHORIZE_REASON,
  ReauthorizeError,
  StoreUnavailableError,
} from "./errors.js";

/** ErrorInfo.domain of the broker's machine-readable error reasons. */
export const ERROR_DOMAIN = "tokenbroker.v1";

/** Each caller-facing error's gRPC status (Connect's codes are the gRPC numbers). */
const STATUS: Readonly<Record<BrokerErrorCode, Code>> = {
  BROKER_INVALID_ARGUMENT: Code.InvalidArgument,
  BROKER_UNKNOWN_APP: Code.NotFound,
  BROKER_APP_REMOVED: Code.NotFound,
  BROKER_UPSTREAM_CONFIG: Code.FailedPrecondition,
  BROKER_FAILED_PRECONDITION: Code.FailedPrecondition,
  BROKER_QUOTA_EXHAUSTED: Code.ResourceExhausted,
  BROKER_UPSTREAM_UNAVAILABLE: Code.Unavailable,
  // gRPC's code for an error from an error space this one does not know.
  BROKER_UPSTREAM_REJECTED: Code.Unknown,
  BROKER_SHUTTING_DOWN: Code.Unavailable,
  BROKER_PERMISSION_DENIED: Code.PermissionDenied,
  BROKER_REAUTHORIZE: Code.FailedPrecondition,
  BROKER_REAUTHORIZE_BAD_CODE: Code.InvalidArgument,
};

/** Redis down and nothing held that could answer: a known condition, not a bug. */
const STORE_UNAVAILABLE_MESSAGE =
  "the broker's shared store (Redis) is unreachable and this replica holds nothing that answers the request; " +
  "retry with backoff or on another replica, and check the broker's Redis connection";

/** The only thing put on the wire for an error the broker did not expect. */
export const INTERNAL_MESSAGE = "internal error";

/**
 * THE mapping from an error to the status a caller sees, for both listeners.
 * ConnectErrors (a deadline or cancel raised by the transport) pass through.
 * A BrokerError keeps its message. A store outage is UNAVAILABLE with a fixed
 * message (the store's own text may name Redis internals). Anything else is a
 * bug: INTERNAL with a generic message and no cause; whoever maps it logs
 * it (see {@link isUnexpected}).
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ReauthorizeError) {
    const info = { reason: REAUTHORIZE_REASON, domain: ERROR_DOMAIN, metadata: err.details };
    return new ConnectError(
      err.message,
      STATUS[err.code],
      undefined,
      [{ desc: ErrorInfoSchema, value: info }],
      err,
    );
  }
  if (err instanceof BrokerError)
    return new ConnectError(err.message, STATUS[err.code], undefined, undefined, err);
  if (err instanceof StoreUnavailableError)
    return new ConnectError(STORE_UNAVAILABLE_MESSAGE, Code.Unavailable, undefined, undefined, err);
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
}

/**
 * True for an error that is a bug rather than an outcome the broker knows:
 * worth an error log line where it is met. An UpstreamError that escaped its
 * conversion to a BrokerError (to-broker-error.ts) counts as one.
 */
export function isUnexpected(err: unknown): boolean {
  return !(
    err instanceof ConnectError ||
    err instanceof BrokerError ||
    err instanceof StoreUnavailableError
  );
}
