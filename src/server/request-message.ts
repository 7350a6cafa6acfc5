import {
  Code,
  ConnectError,
  type Interceptor,
  type StreamRequest,
  type UnaryRequest,
} from "@connectrpc/connect";

/**
 * The one request message of a server-streaming call, as interceptors get it:
 * an AsyncIterable (as connect types a stream request) that still shows its
 * message, so an interceptor can check a WatchToken's app_id before the
 * handler runs.
 */
export class SingleMessage<T> implements AsyncIterable<T> {
  constructor(readonly value: T) {}

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield this.value;
  }
}

/**
 * The request message an interceptor may inspect: a unary call's, or a
 * server-streaming call's one message (both listeners hand interceptors a
 * {@link SingleMessage}); undefined for client- and bidi-streaming calls,
 * whose messages are still to come.
 */
export function requestMessage(req: UnaryRequest | StreamRequest): unknown {
  if (!req.stream) return req.message;
  return req.message instanceof SingleMessage ? req.message.value : undefined;
}

/**
 * Reads a server-streaming call's request stream to its one message, so the
 * interceptors after this one see it as a {@link SingleMessage} (connect-node
 * hands interceptors the stream unread). Other calls pass as they are.
 */
export const singleInput: Interceptor = (next) => (req) => {
  if (
    !req.stream ||
    req.method.methodKind !== "server_streaming" ||
    req.message instanceof SingleMessage
  ) {
    return next(req);
  }
  return onlyMessage(req.message).then((message) =>
    next({ ...req, message: new SingleMessage(message) }),
  );
};

/** `interceptors` behind {@link singleInput}; none stay none (nothing to read early). */
export function withSingleInput(interceptors: readonly Interceptor[]): Interceptor[] {
  return interceptors.length === 0 ? [] : [singleInput, ...interceptors];
}

/**
 * The one message of a server-streaming request. Refused as connect refuses
 * it when there is none or more than one.
 */
export async function onlyMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  if (messages instanceof SingleMessage) return messages.value as T;
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) {
    throw new ConnectError(
      "protocol error: missing input message for server-streaming method",
      Code.Unimplemented,
    );
  }
  const second = await it.next();
  if (second.done !== true) {
    throw new ConnectError(
      "protocol error: received extra input message for server-streaming method",
      Code.Unimplemented,
    );
  }
  return first.value;
}
