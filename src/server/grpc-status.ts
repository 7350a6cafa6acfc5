import { Code, ConnectError, decodeBinaryHeader } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { StatusObject, status } from "@grpc/grpc-js";
import { SHUTDOWN_MESSAGE } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { isUnexpected, toConnectError } from "../shared/to-connect-error.js";
import { headersToMetadata } from "./grpc-metadata.js";

export { SHUTDOWN_MESSAGE };

/** The abort reason of a closing server: UNAVAILABLE, which clients treat as "retry elsewhere". */
export function shutdownError(): ConnectError {
  return new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable);
}

/** Which call an error belongs to, for the decision and for the log line. */
export interface CallScope {
  /** `/pkg.Service/Method`. */
  readonly procedure: string;
  /** The handler context's signal. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * The error a call ends with, whatever ended it, on both listeners. What an
 * error means for a client is decided by the one mapping, toConnectError
 * (shared/to-connect-error.ts); this adds what only the transport knows:
 *
 * 1. If the call's signal was aborted with a ConnectError (deadline, shutdown,
 *    HTTP/2 cancel), that reason wins: a handler that reacts to the abort by
 *    throwing (an AbortError, a CANCELED from a downstream call) or by simply
 *    returning must not turn the shutdown UNAVAILABLE into something else.
 * 2. A ConnectError thrown by the handler is passed through.
 * 3. Anything else after an abort without a ConnectError reason (an HTTP/1.1
 *    client that went away) is CANCELED; nobody is listening.
 * 4. Anything else goes through the mapping; a bug (INTERNAL, a generic
 *    message on the wire) is logged here with the real error.
 */
export function endingError(err: unknown, scope: CallScope): ConnectError {
  const reason: unknown = scope.signal.aborted ? scope.signal.reason : undefined;
  if (reason instanceof ConnectError) return reason;
  if (err instanceof ConnectError) return err;
  if (scope.signal.aborted) return new ConnectError("the call was canceled", Code.Canceled);
  if (isUnexpected(err)) scope.logger.error({ err, procedure: scope.procedure }, "handler failed");
  return toConnectError(err);
}

/** A ConnectError as the status object grpc-js sends in trailers. */
export function toGrpcStatus(err: ConnectError, trailer?: Headers): Partial<StatusObject> {
  const metadata = headersToMetadata(err.metadata);
  if (trailer) metadata.merge(headersToMetadata(trailer));
  // Error details (a google.rpc.ErrorInfo) travel as google.rpc.Status in
  // grpc-status-details-bin, which grpc-js leaves to the application.
  if (err.details.length > 0) {
    const bin = setTrailerStatus(new Headers(), err).get("grpc-status-details-bin");
    if (bin !== null) metadata.set("grpc-status-details-bin", Buffer.from(decodeBinaryHeader(bin)));
  }
  // Connect's Code enum uses the gRPC status numbers.
  const code: status = err.code as number;
  return { code, details: err.rawMessage, metadata };
}
