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
  const message = ObservedMessages.around(res.message, start);
  // A plain response (connect-node's) is spread, as connect does. A class
  // instance (the gRPC port's, whose header and trailer are getters building
  // Headers only when read) is derived from instead: a spread would build
  // two empty Headers for every idle stream.
  if (Object.getPrototypeOf(res) === Object.prototype) return { ...res, message };
  return Object.create(res, { message: { value: message, enumerable: true } }) as StreamResponse;
}

type Start = () => (outcome: unknown) => void;
type Message = StreamResponse["message"] extends AsyncIterable<infer M> ? M : never;

/**
 * A stream observed by one or more interceptors. Each layer that observes a
 * stream already observed by an inner one joins that observer instead of
 * wrapping it again: every message then costs one observer hop, not one per
 * layer, which is what a refresh pushed to 10,000 streams pays per stream.
 * Layers start outermost first (as nested wrappers' first reads would) and
 * end innermost first; if a start throws, the layers already started end
 * with that error.
 */
class ObservedMessages implements AsyncIterable<Message> {
  private constructor(
    private readonly source: AsyncIterable<Message>,
    private readonly starts: readonly Start[],
  ) {}

  static around(source: AsyncIterable<Message>, start: Start): ObservedMessages {
    return source instanceof ObservedMessages
      ? new ObservedMessages(source.source, [start, ...source.starts])
      : new ObservedMessages(source, [start]);
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return observeStream(() => ({ source: this.source, end: this.#startAll() }), CANCELED)[
      Symbol.asyncIterator
    ]();
  }

  #startAll(): (outcome: unknown) => void {
    const ends: Array<(outcome: unknown) => void> = [];
    try {
      for (const start of this.starts) ends.push(start());
    } catch (err) {
      endAll(ends, err);
      throw err;
    }
    return ends.length === 1 ? (ends[0] as (outcome: unknown) => void) : (o) => endAll(ends, o);
  }
}

function endAll(ends: ReadonlyArray<(outcome: unknown) => void>, outcome: unknown): void {
  for (let i = ends.length - 1; i >= 0; i--) ends[i]?.(outcome);
}

/** An outcome as audit lines and metrics name it: "ok", "permission_denied", ... */
export function codeName(err: unknown): string {
  if (err === undefined) return "ok";
  const code = err instanceof ConnectError ? err.code : Code.Unknown;
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
