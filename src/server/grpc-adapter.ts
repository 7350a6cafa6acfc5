import type { EventEmitter } from "node:events";
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  isMessage,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type HandlerContext,
} from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.js";
import { hasHeaders, headersToMetadata, metadataToHeaders } from "./grpc-metadata.js";
import { toConnectError, toGrpcStatus } from "./grpc-status.js";
import { parseGrpcJsPeer, peerKey } from "./peer.js";
import {
  type AnyMethodImpl,
  methodImpl,
  methodPath,
  type ServiceRegistration,
} from "./registration.js";
import type { ShutdownSignals } from "./shutdown.js";
import { abortable, drained, raceAbort } from "./streams.js";

export interface GrpcAdapterOptions {
  readonly logger: Logger;
  readonly shutdown: ShutdownSignals;
}

export interface GrpcService {
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
}

type Message = MessageShape<DescMessage>;
type AnyCall =
  | grpc.ServerUnaryCall<Message, Message>
  | grpc.ServerReadableStream<Message, Message>
  | grpc.ServerWritableStream<Message, Message>
  | grpc.ServerDuplexStream<Message, Message>;
type Context = HandlerContext & { abort(reason?: unknown): void };

/**
 * A connect-es service implementation as a grpc-js service: protobuf-es binary
 * serialization, and a connect `HandlerContext` per call whose signal aborts on
 * client cancel, deadline and server shutdown, so handlers are unaware of
 * which listener they run on.
 */
/**
 * The reason a finished call's signal is aborted with (so downstream work
 * stops). Preallocated: aborting without a reason builds a DOMException with a
 * stack trace on every call, which showed up as several percent of the hot path.
 */
const CALL_FINISHED = Object.assign(new Error("the call has finished"), { name: "AbortError" });

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
    implementation[method.localName] = handlerFor(method, methodImpl(reg, method), options);
  }
  return { definition, implementation };
}

function handlerFor(
  method: DescMethod,
  impl: AnyMethodImpl,
  o: GrpcAdapterOptions,
): grpc.UntypedHandleCall {
  const shutdown = o.shutdown.forKind(method.methodKind);
  switch (method.methodKind) {
    case "unary":
      return (
        call: grpc.ServerUnaryCall<Message, Message>,
        callback: grpc.sendUnaryData<Message>,
      ) => {
        const ctx = callContext(call, method, shutdown);
        respond(method, ctx, call, callback, async () => impl(call.request, ctx), o.logger);
      };
    case "client_streaming":
      return (
        call: grpc.ServerReadableStream<Message, Message>,
        callback: grpc.sendUnaryData<Message>,
      ) => {
        const ctx = callContext(call, method, shutdown);
        respond(method, ctx, call, callback, async () => impl(readAll(call, ctx), ctx), o.logger);
      };
    case "server_streaming":
      return (call: grpc.ServerWritableStream<Message, Message>) => {
        const ctx = callContext(call, method, shutdown);
        void pump(method, ctx, call, () => impl(call.request, ctx), o.logger);
      };
    case "bidi_streaming":
      return (call: grpc.ServerDuplexStream<Message, Message>) => {
        const ctx = callContext(call, method, shutdown);
        void pump(method, ctx, call, () => impl(readAll(call, ctx), ctx), o.logger);
      };
  }
}

function callContext(call: AnyCall, method: DescMethod, shutdownSignal: AbortSignal): Context {
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const cancel = new AbortController();
  const onCancel = () =>
    cancel.abort(
      Date.now() >= deadlineMs
        ? new ConnectError("the operation timed out", Code.DeadlineExceeded)
        : new ConnectError("the client canceled the call", Code.Canceled),
    );
  if (call.cancelled) onCancel();
  else (call as EventEmitter).once("cancelled", onCancel);
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://${call.getHost()}${methodPath(method)}`,
    timeoutMs: Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : undefined,
    shutdownSignal,
    requestSignal: cancel.signal,
    requestHeader: metadataToHeaders(call.metadata),
    contextValues: createContextValues().set(
      peerKey,
      parseGrpcJsPeer(call.getPeer(), call.getAuthContext()),
    ),
  });
}

/** Unary and client streaming: one response message through the callback. */
function respond(
  method: DescMethod,
  ctx: Context,
  call: AnyCall,
  callback: grpc.sendUnaryData<Message>,
  run: () => Promise<unknown>,
  logger: Logger,
): void {
  raceAbort(run(), ctx.signal)
    .then((out) => normalize(method.output, out))
    .then(
      (message) => {
        if (hasHeaders(ctx.responseHeader))
          call.sendMetadata(headersToMetadata(ctx.responseHeader));
        callback(null, message, headersToMetadata(ctx.responseTrailer));
      },
      (err: unknown) => {
        const scope = { procedure: methodPath(method), signal: ctx.signal, logger };
        callback(toGrpcStatus(toConnectError(err, scope), ctx.responseTrailer));
      },
    )
    .catch((err: unknown) =>
      logger.error({ err, procedure: methodPath(method) }, "failed to respond"),
    )
    .finally(() => ctx.abort(CALL_FINISHED));
}

type WritableCall =
  | grpc.ServerWritableStream<Message, Message>
  | grpc.ServerDuplexStream<Message, Message>;

/** Server and bidi streaming: handler output to the call, then a status. */
async function pump(
  method: DescMethod,
  ctx: Context,
  call: WritableCall,
  produce: () => unknown,
  logger: Logger,
): Promise<void> {
  let headersSent = false;
  const sendHeaders = () => {
    if (!headersSent && hasHeaders(ctx.responseHeader)) {
      call.sendMetadata(headersToMetadata(ctx.responseHeader));
    }
    headersSent = true;
  };
  try {
    const output = produce() as AsyncIterable<unknown>;
    for await (const out of abortable(output, ctx.signal)) {
      sendHeaders();
      if (!call.write(normalize(method.output, out))) await drained(call, ctx.signal);
    }
    sendHeaders();
    call.end(headersToMetadata(ctx.responseTrailer));
  } catch (err) {
    const scope = { procedure: methodPath(method), signal: ctx.signal, logger };
    const status = toGrpcStatus(toConnectError(err, scope), ctx.responseTrailer);
    if (!call.cancelled) call.emit("error", status);
  } finally {
    ctx.abort(CALL_FINISHED);
  }
}

/** Client messages as an AsyncIterable that ends on half-close and throws on abort. */
function readAll(
  call: grpc.ServerReadableStream<Message, Message> | grpc.ServerDuplexStream<Message, Message>,
  ctx: Context,
): AsyncIterable<Message> {
  // Leaving the loop early must not destroy a duplex call: its response side is still in use.
  const messages = { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) };
  return abortable(messages as AsyncIterable<Message>, ctx.signal);
}

function normalize(schema: DescMessage, value: unknown): Message {
  if (isMessage(value, schema)) return value;
  return create(schema, value as Parameters<typeof create>[1]);
}
