import { Code, ConnectError } from "@connectrpc/connect";
import type { StatusObject, status } from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.js";
import { headersToMetadata } from "./grpc-metadata.js";

/** What a client sees when the server ends its stream (or, after the grace period, its call). */
export const SHUTDOWN_MESSAGE = "broker is shutting down; reconnect to another replica";

/** The abort reason of a closing server: UNAVAILABLE, which clients treat as "retry elsewhere". */
export function shutdownError(): ConnectError {
  return new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable);
}

/** The only thing put on the wire for an error that is not a ConnectError. */
const INTERNAL_MESSAGE = "internal error";

/** Which call an error belongs to, for the decision and for the log line. */
export interface CallScope {
  /** `/pkg.Service/Method`. */
  readonly procedure: string;
  /** The handler context's signal. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * THE mapping from whatever ended a call to the status a client sees, shared
 * by both listeners:
 *
 * 1. If the call's signal was aborted with a ConnectError (deadline, shutdown,
 *    HTTP/2 cancel), that reason wins: a handler that reacts to the abort by
 *    throwing (an AbortError, a CANCELED from a downstream call) or by simply
 *    returning must not turn the shutdown UNAVAILABLE into something else.
 * 2. A ConnectError thrown by the handler is passed through; its code is
 *    numerically the gRPC status code.
 * 3. Anything else after an abort without a ConnectError reason (an HTTP/1.1
 *    client that went away) is CANCELED; nobody is listening.
 * 4. Anything else is a bug: INTERNAL with a generic message, and the real
 *    error goes to the log only, never on the wire.
 */
export function toConnectError(err: unknown, scope: CallScope): ConnectError {
  const reason: unknown = scope.signal.aborted ? scope.signal.reason : undefined;
  if (reason instanceof ConnectError) return reason;
  if (err instanceof ConnectError) return err;
  if (scope.signal.aborted) return new ConnectError("the call was canceled", Code.Canceled);
  scope.logger.error({ err, procedure: scope.procedure }, "handler failed");
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
}

/** A ConnectError as the status object grpc-js sends in trailers. */
export function toGrpcStatus(err: ConnectError, trailer?: Headers): Partial<StatusObject> {
  const metadata = headersToMetadata(err.metadata);
  if (trailer) metadata.merge(headersToMetadata(trailer));
  // Connect's Code enum uses the gRPC status numbers.
  const code: status = err.code as number;
  return { code, details: err.rawMessage, metadata };
}
