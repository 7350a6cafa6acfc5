import {
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.js";
import { GrpcCallContext, type GrpcJsCall, LiveCalls } from "./grpc-call-context.js";
import { type Invoke, intercepted, normalize } from "./grpc-interceptors.js";
import { endingError, toGrpcStatus } from "./grpc-status.js";
import { methodImpl, methodPath, type ServiceRegistration } from "./registration.js";
import type { ShutdownSignals } from "./shutdown.js";
import { abortable, drained } from "./streams.js";

export interface GrpcAdapterOptions {
  readonly logger: Logger;
  readonly shutdown: ShutdownSignals;
}

export interface GrpcService {
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
}

type Message = MessageShape<DescMessage>;

/**
 * A connect-es service implementation as a grpc-js service: protobuf-es binary
 * serialization, a connect `HandlerContext` per call whose signal aborts on
 * client cancel, deadline and server shutdown, and the registration's
 * interceptors run as connect-node runs them, so handlers and interceptors are
 * unaware of which listener they run on.
 */
export function toGrpcService(reg: ServiceRegistration, options: GrpcAdapterOptions): GrpcService {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of reg.service.methods) {
    const kind = method.methodKind;
    // A message shared by many streams (a WatchToken update) is serialized
    // once; handlers never mutate a message after returning or yielding it.
    const encoded = new WeakMap<Message, Buffer>();
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: kind === "client_streaming" || kind === "bidi_streaming",
      responseStream: kind === "server_streaming" || kind === "bidi_streaming",
      requestSerialize: (m) => Buffer.from(toBinary(method.input, m)),
      requestDeserialize: (b) => fromBinary(method.input, b),
      responseSerialize: (m) => {
        let bytes = encoded.get(m);
        if (!bytes) {
          bytes = Buffer.from(toBinary(method.output, m));
          encoded.set(m, bytes);
        }
        return bytes;
      },
      responseDeserialize: (b) => fromBinary(method.output, b),
      originalName: method.localName,
    };
    const invoke = intercepted(method, methodImpl(reg, method), reg.interceptors ?? []);
    implementation[method.localName] = handlerFor(method, invoke, options);
  }
  return { definition, implementation };
}

function handlerFor(
  method: DescMethod,
  impl: Invoke,
  o: GrpcAdapterOptions,
): grpc.UntypedHandleCall {
  const live = new LiveCalls(o.shutdown.forKind(method.methodKind));
  switch (method.methodKind) {
    case "unary":
      return (
        call: grpc.ServerUnaryCall<Message, Message>,
        callback: grpc.sendUnaryData<Message>,
      ) => {
        const ctx = new GrpcCallContext(method, call as GrpcJsCall, live);
        respond(method, ctx, call, callback, () => impl(call.request, ctx), o.logger);
      };
    case "client_streaming":
      return (
        call: grpc.ServerReadableStream<Message, Message>,
        callback: grpc.sendUnaryData<Message>,
      ) => {
        const ctx = new GrpcCallContext(method, call, live);
        respond(method, ctx, call, callback, () => impl(readAll(call, ctx), ctx), o.logger);
      };
    case "server_streaming":
      return (call: grpc.ServerWritableStream<Message, Message>) => {
        const ctx = new GrpcCallContext(method, call, live);
        void pump(method, ctx, call, () => impl(call.request, ctx), o.logger);
      };
    case "bidi_streaming":
      return (call: grpc.ServerDuplexStream<Message, Message>) => {
        const ctx = new GrpcCallContext(method, call, live);
        void pump(method, ctx, call, () => impl(readAll(call, ctx), ctx), o.logger);
      };
  }
}

/** Unary and client streaming: one response message through the callback. */
function respond(
  method: DescMethod,
  ctx: GrpcCallContext,
  call: GrpcJsCall,
  callback: grpc.sendUnaryData<Message>,
  run: () => unknown,
  logger: Logger,
): void {
  let result: Promise<unknown>;
  try {
    result = Promise.resolve(run());
  } catch (err) {
    result = Promise.reject(err);
  }
  ctx
    .race(result)
    .then((out) => normalize(method.output, out))
    .then(
      (message) => {
        const header = ctx.headerMetadata();
        if (header) call.sendMetadata(header);
        callback(null, message, ctx.trailerMetadata());
      },
      (err: unknown) => {
        const scope = { procedure: methodPath(method), signal: ctx.signal, logger };
        callback(toGrpcStatus(endingError(err, scope), ctx.trailersForStatus()));
      },
    )
    .catch((err: unknown) =>
      logger.error({ err, procedure: methodPath(method) }, "failed to respond"),
    )
    .finally(() => ctx.finish());
}

type WritableCall =
  | grpc.ServerWritableStream<Message, Message>
  | grpc.ServerDuplexStream<Message, Message>;

/** Server and bidi streaming: handler output to the call, then a status. */
async function pump(
  method: DescMethod,
  ctx: GrpcCallContext,
  call: WritableCall,
  produce: () => unknown,
  logger: Logger,
): Promise<void> {
  let headersSent = false;
  const sendHeaders = () => {
    if (!headersSent) {
      const header = ctx.headerMetadata();
      if (header) call.sendMetadata(header);
    }
    headersSent = true;
  };
  try {
    // A promise when interceptors run first.
    const output = (await produce()) as AsyncIterable<unknown>;
    for await (const out of abortable(output, ctx.signal)) {
      sendHeaders();
      if (!call.write(normalize(method.output, out))) await drained(call, ctx.signal);
    }
    sendHeaders();
    call.end(ctx.trailerMetadata());
  } catch (err) {
    const scope = { procedure: methodPath(method), signal: ctx.signal, logger };
    const status = toGrpcStatus(endingError(err, scope), ctx.trailersForStatus());
    if (!call.cancelled) call.emit("error", status);
  } finally {
    ctx.finish();
  }
}

/** Client messages as an AsyncIterable that ends on half-close and throws on abort. */
function readAll(
  call: grpc.ServerReadableStream<Message, Message> | grpc.ServerDuplexStream<Message, Message>,
  ctx: GrpcCallContext,
): AsyncIterable<Message> {
  // Leaving the loop early must not destroy a duplex call: its response side is still in use.
  const messages = { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) };
  return abortable(messages as AsyncIterable<Message>, ctx.signal);
}
