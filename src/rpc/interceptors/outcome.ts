import {
  Code,
  ConnectError,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { observeStream } from "../../shared/observe-stream.js";

export type AnyRequest = UnaryRequest | StreamRequest;
export type AnyResponse = UnaryResponse | StreamResponse;

/** The outcome of a stream its client stopped reading. */
const CANCELED = new ConnectError("stream ended by the client", Code.Canceled);

/**
 * `res` with `start` run when its stream starts (its first read) and the
 * function `start` returns run once when the stream ends, however it ends:
 * with `undefined` on completion, the error, or CANCELED. A stream nobody
 * reads never starts, so never ends either; an error thrown by `start` fails
 * the first read.
 */
export function onStreamEnd(
  res: StreamResponse,
  start: () => (outcome: unknown) => void,
): StreamResponse {
  const source = res.message;
  const message = observeStream(() => ({ source, end: start() }), CANCELED);
  // A plain response (connect-node's) is spread, as connect does. A class
  // instance (the gRPC port's, whose header and trailer are getters building
  // Headers only when read) is derived from instead: a spread would build
  // two empty Headers for every idle stream.
  if (Object.getPrototypeOf(res) === Object.prototype) return { ...res, message };
  return Object.create(res, { message: { value: message, enumerable: true } }) as StreamResponse;
}

/** An outcome as audit lines and metrics name it: "ok", "permission_denied", ... */
export function codeName(err: unknown): string {
  if (err === undefined) return "ok";
  const code = err instanceof ConnectError ? err.code : Code.Unknown;
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
