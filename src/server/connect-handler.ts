import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import {
  createContextValues,
  type Interceptor,
  type MethodImpl,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "../shared/logger.js";
import { endingError } from "./grpc-status.js";
import { peerKey, peerOf } from "./peer.js";
import { methodImpl, methodPath, type ServiceRegistration } from "./registration.js";
import { withSingleInput } from "./request-message.js";
import type { ShutdownSignals } from "./shutdown.js";
import { abortable, raceAbort } from "./streams.js";

/** The request handler connect-node builds, usable by http and http2 servers. */
export type NodeHandler = ReturnType<typeof connectNodeAdapter>;

export interface ConnectHandlerOptions {
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  readonly shutdown: ShutdownSignals;
  readonly maxReceiveMessageBytes?: number | undefined;
}

/**
 * One connect-node handler serving Connect, gRPC-Web and gRPC for `services`.
 * Each method gets the shutdown signal of its kind (streams end at once,
 * unary calls only when the grace period is over), and every call runs
 * through {@link callGuard}, then its registration's interceptors.
 */
export function createConnectHandler(options: ConnectHandlerOptions): NodeHandler {
  const guard = callGuard(options.logger);
  return connectNodeAdapter({
    routes(router) {
      for (const reg of options.services) {
        // A method's interceptors replace the router's, so the guard is repeated here.
        const interceptors = [guard, ...withSingleInput(reg.interceptors ?? [])];
        for (const method of reg.service.methods) {
          const impl = methodImpl(reg, method) as MethodImpl<DescMethod>;
          router.rpc(method, impl, {
            shutdownSignal: options.shutdown.forKind(method.methodKind),
            interceptors,
          });
        }
      }
    },
    contextValues: (req) => createContextValues().set(peerKey, peerOf(req.socket)),
    ...(options.maxReceiveMessageBytes !== undefined && {
      readMaxBytes: options.maxReceiveMessageBytes,
    }),
  });
}

/**
 * Applies the shared error mapping (grpc-status.ts) to connect-node calls, as
 * the grpc-js adapter does: connect-node alone would send CANCELED or
 * "internal error" when a handler reacts to the shutdown signal, and would
 * keep a call open whose handler ignores the signal. Unary results and
 * stream output and input are therefore raced against the call's signal.
 */
function callGuard(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const scope = { procedure: methodPath(req.method), signal: req.signal, logger };
    try {
      if (!req.stream) return await raceAbort(next(req), req.signal);
      const res = await next({
        ...req,
        message: abortable(req.message, req.signal),
      } as StreamRequest);
      return { ...res, message: guardOutput(res as StreamResponse, scope) } as StreamResponse;
    } catch (err) {
      throw endingError(err, scope);
    }
  };
}

async function* guardOutput(
  res: StreamResponse,
  scope: Parameters<typeof endingError>[1],
): AsyncGenerator<MessageShape<DescMessage>> {
  try {
    // Throws the abort reason even if the handler would end normally, so a
    // handler that returns when its signal aborts still ends with it.
    yield* abortable(res.message, scope.signal);
  } catch (err) {
    throw endingError(err, scope);
  }
}
