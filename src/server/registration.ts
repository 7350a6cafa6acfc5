import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";

/**
 * One service to serve: its descriptor and its connect-es implementation.
 * Both listeners (grpc-js and connect-node) serve the same registrations, so a
 * handler is written once as a `ServiceImpl` and reached over every protocol.
 */
export interface ServiceRegistration {
  readonly service: DescService;
  /** Methods left out answer UNIMPLEMENTED. */
  readonly impl: Partial<ServiceImpl<DescService>>;
  /**
   * Run around every call of this service, on both listeners alike (the
   * first is the outermost). For a server-streaming call `req.message` is a
   * `SingleMessage` (see `requestMessage`).
   */
  readonly interceptors?: readonly Interceptor[];
}

/**
 * Type-checks `impl` against `service` (every method required) and erases the
 * type so registrations of different services fit in one list. Throws when
 * `interceptors` are given for a service with client- or bidi-streaming
 * methods: their requests are many messages, and a check of the first would
 * let the rest through.
 */
export function registration<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  interceptors: readonly Interceptor[] = [],
): ServiceRegistration {
  if (interceptors.length > 0) {
    for (const method of service.methods) {
      if (method.methodKind === "unary" || method.methodKind === "server_streaming") continue;
      throw new Error(
        `cannot guard ${method.parent.typeName}/${method.name} with interceptors: client- and bidi-streaming methods are not supported`,
      );
    }
  }
  return { service, impl: impl as Partial<ServiceImpl<DescService>>, interceptors };
}

/**
 * A method implementation with its types erased. The adapters know the method
 * kind from the descriptor and call it with the matching input shape: a message
 * for unary and server streaming, an AsyncIterable for the other two.
 */
export type AnyMethodImpl = (input: unknown, context: HandlerContext) => unknown;

/** The bound implementation of `method`, or one that answers UNIMPLEMENTED. */
export function methodImpl(reg: ServiceRegistration, method: DescMethod): AnyMethodImpl {
  const fn: unknown = (reg.impl as Record<string, unknown>)[method.localName];
  if (typeof fn === "function") {
    return (fn as AnyMethodImpl).bind(reg.impl);
  }
  const message = `${reg.service.typeName}.${method.name} is not implemented`;
  return () => {
    throw new ConnectError(message, Code.Unimplemented);
  };
}

/** The gRPC path of a method, `/pkg.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}
