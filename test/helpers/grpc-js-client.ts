import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodBiDiStreaming,
  type DescMethodClientStreaming,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** Per-call options of {@link createGrpcJsClient} methods. */
export interface GrpcJsCallOptions {
  /** Request metadata; `-bin` keys take Buffers. */
  metadata?: Record<string, string | Buffer>;
  /** Relative deadline. */
  timeoutMs?: number;
  /** Cancels the call (the client then sees CANCELLED). */
  signal?: AbortSignal;
}

type Init<D extends DescMessage> = MessageInitShape<D>;
type Out<D extends DescMessage> = MessageShape<D>;

/** The promise/AsyncIterable signature of one method; errors are grpc-js `ServiceError`s. */
export type GrpcJsMethod<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? (request: Init<I>, options?: GrpcJsCallOptions) => Promise<Out<O>>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? (request: Init<I>, options?: GrpcJsCallOptions) => AsyncIterable<Out<O>>
      : M extends DescMethodClientStreaming<infer I, infer O>
        ? (
            requests: Iterable<Init<I>> | AsyncIterable<Init<I>>,
            options?: GrpcJsCallOptions,
          ) => Promise<Out<O>>
        : M extends DescMethodBiDiStreaming<infer I, infer O>
          ? (
              requests: Iterable<Init<I>> | AsyncIterable<Init<I>>,
              options?: GrpcJsCallOptions,
            ) => AsyncIterable<Out<O>>
          : never;

export type GrpcJsClient<S extends DescService> = {
  [P in keyof S["method"]]: GrpcJsMethod<S["method"][P]>;
} & {
  /** The underlying grpc-js client (for waitForReady, channel state...). */
  readonly raw: grpc.Client;
  close(): void;
};

type AnyMessage = MessageShape<DescMessage>;

/**
 * A grpc-js client for any protobuf-es service, built with
 * `makeGenericClientConstructor` and protobuf-es binary serializers, so no
 * proto-loader is involved. Independent of the server-side adapter on purpose.
 */
export function createGrpcJsClient<S extends DescService>(
  service: S,
  address: string,
  options: grpc.ClientOptions = {},
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): GrpcJsClient<S> {
  const definition: Record<string, grpc.MethodDefinition<AnyMessage, AnyMessage>> = {};
  for (const m of service.methods) {
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (msg) => Buffer.from(toBinary(m.input, msg)),
      requestDeserialize: (b) => fromBinary(m.input, b),
      responseSerialize: (msg) => Buffer.from(toBinary(m.output, msg)),
      responseDeserialize: (b) => fromBinary(m.output, b),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition, service.typeName);
  const raw = new Ctor(address.replace(/^http:\/\//, ""), credentials, options);
  const client: Record<string, unknown> = { raw, close: () => raw.close() };
  for (const m of service.methods) client[m.localName] = methodFor(raw, m, definition[m.localName]);
  return client as GrpcJsClient<S>;
}

function methodFor(
  raw: grpc.Client,
  m: DescMethod,
  d: grpc.MethodDefinition<AnyMessage, AnyMessage> | undefined,
): unknown {
  if (!d) throw new Error(`no definition for ${m.name}`);
  const call = (opts: GrpcJsCallOptions = {}) => {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(opts.metadata ?? {})) metadata.add(k, v);
    const callOptions: grpc.CallOptions = {};
    if (opts.timeoutMs !== undefined) callOptions.deadline = Date.now() + opts.timeoutMs;
    return { metadata, callOptions };
  };
  const cancelOn = (c: grpc.Call, signal: AbortSignal | undefined) => {
    if (signal?.aborted) c.cancel();
    signal?.addEventListener("abort", () => c.cancel(), { once: true });
  };
  const send = async (
    w: grpc.ClientWritableStream<AnyMessage>,
    reqs: Iterable<unknown> | AsyncIterable<unknown>,
  ) => {
    for await (const r of reqs) w.write(create(m.input, r as Init<DescMessage>));
    w.end();
  };
  switch (m.methodKind) {
    case "unary":
      return (req: Init<DescMessage>, opts?: GrpcJsCallOptions) =>
        new Promise((resolve, reject) => {
          const { metadata, callOptions } = call(opts);
          const c = raw.makeUnaryRequest(
            d.path,
            d.requestSerialize,
            d.responseDeserialize,
            create(m.input, req),
            metadata,
            callOptions,
            (err, res) => (err ? reject(err) : resolve(res)),
          );
          cancelOn(c, opts?.signal);
        });
    case "server_streaming":
      return (req: Init<DescMessage>, opts?: GrpcJsCallOptions) => {
        const { metadata, callOptions } = call(opts);
        const c = raw.makeServerStreamRequest(
          d.path,
          d.requestSerialize,
          d.responseDeserialize,
          create(m.input, req),
          metadata,
          callOptions,
        );
        cancelOn(c, opts?.signal);
        return c;
      };
    case "client_streaming":
      return (reqs: Iterable<unknown>, opts?: GrpcJsCallOptions) =>
        new Promise((resolve, reject) => {
          const { metadata, callOptions } = call(opts);
          const c = raw.makeClientStreamRequest(
            d.path,
            d.requestSerialize,
            d.responseDeserialize,
            metadata,
            callOptions,
            (err, res) => (err ? reject(err) : resolve(res)),
          );
          cancelOn(c, opts?.signal);
          send(c, reqs).catch(reject);
        });
    case "bidi_streaming":
      return (reqs: Iterable<unknown>, opts?: GrpcJsCallOptions) => {
        const { metadata, callOptions } = call(opts);
        const c = raw.makeBidiStreamRequest(
          d.path,
          d.requestSerialize,
          d.responseDeserialize,
          metadata,
          callOptions,
        );
        cancelOn(c, opts?.signal);
        send(c, reqs).catch((err: unknown) => c.destroy(err as Error));
        return c;
      };
  }
}
