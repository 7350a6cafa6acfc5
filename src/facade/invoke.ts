import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  type ContextValues,
  createContextValues,
  createHandlerContext,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { identifyCallerKey } from "../security/client-context.js";
import type { CompiledClient } from "../security/policy.js";
import { normalize } from "../server/grpc-interceptors.js";
import { type Peer, peerKey, type ServiceRegistration } from "../server/index.js";
import { methodImpl } from "../server/registration.js";
import { toConnectError } from "../shared/to-connect-error.js";

/** Who the caller is, as the façade found from its WeChat-style credentials. */
export type Verdict =
  | { readonly client: CompiledClient }
  | { readonly refused: { readonly errcode: number; readonly message: string } };

/** One façade request as the RPC chain sees it. */
export interface CallScope {
  readonly peer: Peer | undefined;
  /** The request's headers (X-Forwarded-For is read from them when proxies are trusted). */
  readonly header: Headers;
  readonly signal: AbortSignal;
  readonly url: string;
}

/** What a call through the chain tells the error mapping besides its error. */
export interface CallOutcome {
  /** True once the chain asked who the caller is: it passed the address check. */
  identified: boolean;
}

/**
 * Runs one unary method of a registered service in-process, through that
 * registration's own interceptors (metrics, authenticate, authorize, limits,
 * audit) and implementation, exactly as the listeners run it: the same
 * rate-limit buckets, refusal log and audit stream. The caller's identity
 * comes from `verdict` through `identifyCallerKey`, which the authenticate
 * interceptor consults after the address check. Throws the ConnectError a
 * client would get.
 */
export async function invokeUnary<I extends DescMessage, O extends DescMessage>(
  reg: ServiceRegistration,
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
  verdict: Verdict,
  scope: CallScope,
  outcome: CallOutcome,
): Promise<MessageShape<O>> {
  const impl = methodImpl(reg, method);
  const contextValues: ContextValues = createContextValues()
    .set(peerKey, scope.peer)
    .set(identifyCallerKey, () => {
      outcome.identified = true;
      return "client" in verdict ? verdict.client : verdict.refused.message;
    });
  type Fn = (req: UnaryRequest) => Promise<UnaryResponse>;
  let run: Fn = async (req) => {
    const ctx = createHandlerContext({
      service: method.parent,
      method,
      protocolName: "wechat-facade",
      requestMethod: req.requestMethod,
      url: req.url,
      requestSignal: req.signal,
      requestHeader: req.header,
      contextValues: req.contextValues,
    });
    const output = await impl(req.message, ctx);
    return {
      stream: false,
      service: method.parent,
      method,
      header: ctx.responseHeader,
      trailer: ctx.responseTrailer,
      message: normalize(method.output, output),
    } as UnaryResponse;
  };
  for (const interceptor of [...(reg.interceptors ?? [])].reverse()) {
    run = interceptor(run as Parameters<typeof interceptor>[0]) as Fn;
  }
  try {
    const res = await run({
      stream: false,
      service: method.parent,
      method,
      requestMethod: "POST",
      url: scope.url,
      signal: scope.signal,
      header: scope.header,
      contextValues,
      message: create(method.input, input),
    } as UnaryRequest);
    return res.message as MessageShape<O>;
  } catch (err) {
    throw toConnectError(err);
  }
}
