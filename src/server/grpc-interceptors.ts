import {
  create,
  type DescMessage,
  type DescMethod,
  isMessage,
  type MessageShape,
} from "@bufbuild/protobuf";
import type {
  HandlerContext,
  Interceptor,
  StreamRequest,
  StreamResponse,
  UnaryRequest,
  UnaryResponse,
} from "@connectrpc/connect";
import type { GrpcCallContext } from "./grpc-call-context.js";
import { type AnyMethodImpl, methodPath } from "./registration.js";
import { onlyMessage, SingleMessage } from "./request-message.js";

type AnyRequest = UnaryRequest | StreamRequest;
type AnyResponse = UnaryResponse | StreamResponse;
type AnyFn = (req: AnyRequest) => Promise<AnyResponse>;

/** What the grpc-js adapter calls per call: the handler, or the handler behind interceptors. */
export type Invoke = (input: unknown, ctx: GrpcCallContext) => unknown;

/** One call through the interceptors: the request built for it and the response its handler gave. */
interface CallState {
  readonly ctx: GrpcCallContext;
  request?: AnyRequest;
  response?: AnyResponse;
}

/** Carries the call through the interceptors; a symbol key survives `{ ...req }`. */
const CALL = Symbol("grpc-js call");
type TaggedRequest = AnyRequest & { readonly [CALL]: CallState };

/**
 * `impl` behind `interceptors`, run as connect-node runs them, so a
 * registration's interceptors behave alike on both listeners: they get a
 * connect `UnaryRequest` or a `StreamRequest` whose message is a
 * {@link SingleMessage}, and the handler gets the call's context (or, if an
 * interceptor replaced the request's header, signal or values, one with
 * those). The result is a promise of the output message (unary) or of the
 * output stream. Without interceptors `impl` itself is returned: a call then
 * costs nothing more.
 *
 * Request and response headers stay as lazy as the context's: built only
 * when an interceptor or the handler reads them. They are getters of the
 * request's class (an object literal with getters costs over a microsecond
 * per call), so `{ ...req }` does not copy them: an interceptor that
 * replaces the request names what it changes, and the rest is the call's.
 */
export function intercepted(
  method: DescMethod,
  impl: AnyMethodImpl,
  interceptors: readonly Interceptor[],
): Invoke {
  if (interceptors.length === 0) return impl;
  const kind = method.methodKind;
  if (kind !== "unary" && kind !== "server_streaming") {
    throw new Error(
      `cannot run interceptors on ${methodPath(method)}: only unary and server-streaming methods are supported`,
    );
  }
  const stream = kind === "server_streaming";
  // Composed once per method: the call travels in the request.
  let run: AnyFn = async (req) => {
    const state = (req as TaggedRequest)[CALL];
    const ctx = contextFor(state, req);
    const output = stream
      ? impl(await onlyMessage(req.message as AsyncIterable<unknown>), ctx)
      : normalize(method.output, await impl(req.message, ctx));
    state.response = new GrpcResponse(state.ctx, method, output, stream) as unknown as AnyResponse;
    return state.response;
  };
  for (const interceptor of [...interceptors].reverse()) run = interceptor(run);
  return async (input, ctx) => {
    const state: CallState = { ctx };
    state.request = new GrpcRequest(
      state,
      method,
      stream ? new SingleMessage(input) : input,
      stream,
    ) as unknown as TaggedRequest;
    const res = await run(state.request);
    if (res !== state.response && !derivedFrom(res, state.response)) {
      // Absent on a response spread from ours (getters are not copied): the call's own.
      copyHeaders(res.header as Headers | undefined, ctx.responseHeader);
      copyHeaders(res.trailer as Headers | undefined, ctx.responseTrailer);
    }
    return res.message;
  };
}

/**
 * The connect request an interceptor gets. A class, so a call allocates one
 * object and no getter closures: header, signal and url stay lazy on `ctx`.
 */
class GrpcRequest {
  readonly service: DescMethod["parent"];
  readonly requestMethod: string;
  readonly contextValues: GrpcCallContext["values"];
  readonly [CALL]: CallState;
  constructor(
    state: CallState,
    readonly method: DescMethod,
    readonly message: unknown,
    readonly stream: boolean,
  ) {
    this.service = method.parent;
    this.requestMethod = state.ctx.requestMethod;
    this.contextValues = state.ctx.values;
    this[CALL] = state;
  }
  get url(): string {
    return this[CALL].ctx.url;
  }
  get signal(): AbortSignal {
    return this[CALL].ctx.signal;
  }
  get header(): Headers {
    return this[CALL].ctx.requestHeader;
  }
}

/**
 * The connect response interceptors see. Its headers are the call's, built
 * only when read (prototype getters: no closures, and an idle stream holds no
 * empty Headers). Stream-wrapping interceptors derive from it
 * (`onStreamEnd`) instead of spreading it; one that spreads loses the
 * getters, and the call's headers are used (see `intercepted`).
 */
class GrpcResponse {
  readonly service: DescMethod["parent"];
  constructor(
    private readonly ctx: GrpcCallContext,
    readonly method: DescMethod,
    readonly message: unknown,
    readonly stream: boolean,
  ) {
    this.service = method.parent;
  }
  get header(): Headers {
    return this.ctx.responseHeader;
  }
  get trailer(): Headers {
    return this.ctx.responseTrailer;
  }
}

/** The context the handler gets: the call's own, unless an interceptor replaced part of it. */
function contextFor(state: CallState, req: AnyRequest): HandlerContext {
  const { ctx } = state;
  if (req === state.request) return ctx;
  // A request spread into a new object (`{ ...req, header }`) loses the
  // lazy getters, which live on the class: what it left out is the call's.
  const signal = (req.signal as AbortSignal | undefined) ?? ctx.signal;
  const header = (req.header as Headers | undefined) ?? ctx.requestHeader;
  if (req.contextValues === ctx.values && signal === ctx.signal && header === ctx.requestHeader) {
    return ctx;
  }
  return {
    method: ctx.method,
    service: req.service,
    protocolName: ctx.protocolName,
    requestMethod: ctx.requestMethod,
    url: ctx.url,
    timeoutMs: () => ctx.timeoutMs(),
    signal,
    requestHeader: header,
    values: req.contextValues,
    get responseHeader() {
      return ctx.responseHeader;
    },
    get responseTrailer() {
      return ctx.responseTrailer;
    },
  };
}

/** `res` is ours with only its message replaced (onStreamEnd): its headers are the call's. */
function derivedFrom(res: AnyResponse, ours: AnyResponse | undefined): boolean {
  return (
    ours !== undefined &&
    Object.prototype.isPrototypeOf.call(ours, res) &&
    !Object.hasOwn(res, "header") &&
    !Object.hasOwn(res, "trailer")
  );
}

/** As connect does when an interceptor's response brings headers of its own. */
function copyHeaders(from: Headers | undefined, to: Headers): void {
  if (from === undefined || from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  for (const [key, value] of from) to.set(key, value);
}

/** A handler's output (a message or an init object) as a message of `schema`. */
export function normalize(schema: DescMessage, value: unknown): MessageShape<DescMessage> {
  if (isMessage(value, schema)) return value;
  return create(schema, value as Parameters<typeof create>[1]);
}
