import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  ConnectError,
  createContextValues,
  createHandlerContext,
  createMethodImplSpec,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  invokeUnaryImplementation,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import type { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import type { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { clientKey, hashApiKey, type SecurityPolicy } from "../../src/security/index.js";
import { type Peer, peerKey } from "../../src/server/peer.js";
import { withSingleInput } from "../../src/server/request-message.js";

/** API keys of the test clients. Never expected in an audit line or an error. */
export const KEYS = {
  orders: "sk_orders_7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e",
  ops: "sk_ops_2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a",
} as const;

/** A token value the fake services return; never expected in an audit line. */
export const TOKEN_VALUE = "ACCESS_TOKEN_VALUE_never_in_logs_4e8b";

export const POLICY: SecurityPolicy = {
  clients: [
    {
      id: "orders-service",
      apiKeySha256: hashApiKey(KEYS.orders),
      apps: ["shop"],
      kinds: ["access_token", "jsapi_ticket"],
      permissions: ["get", "watch", "invalidate"],
      ratePerSecond: 2,
      burst: 3,
      maxWatchStreams: 2,
    },
    {
      id: "ops",
      apiKeySha256: hashApiKey(KEYS.ops).toUpperCase(),
      tlsIdentity: "ops.broker.internal",
      apps: ["*"],
      permissions: ["get", "admin"],
    },
    { id: "shop-admin", tlsIdentity: "shop-admin", apps: ["shop"], permissions: ["admin"] },
  ],
  allowCidrs: ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"],
  trustedProxies: ["10.9.0.0/16", "fd00:9::/64"],
};

export interface CallOptions {
  /** The socket's address; null when the socket is gone. Default 127.0.0.1. */
  peer?: string | null;
  /** The verified client certificate's CN. */
  tls?: string;
  /** A Bearer key, sent as `authorization`. */
  key?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A HandlerContext as either listener builds it. */
export function callContext(method: DescMethod, o: CallOptions = {}): HandlerContext {
  const headers = new Headers(o.headers);
  if (o.key !== undefined) headers.set("authorization", `Bearer ${o.key}`);
  const peer: (Peer & { tlsIdentity?: string }) | undefined =
    o.peer === null
      ? undefined
      : { address: o.peer ?? "127.0.0.1", port: 50123, ...(o.tls ? { tlsIdentity: o.tls } : {}) };
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://broker.test/${method.parent.typeName}/${method.name}`,
    requestHeader: headers,
    contextValues: createContextValues().set(peerKey, peer),
    ...(o.signal ? { requestSignal: o.signal } : {}),
  });
}

/**
 * `impl` behind `interceptors`, run as the Connect listener runs them (with
 * connect's own invoke functions), for tests that call a handler with a
 * context of their own: a unary method returns its output message, a
 * server-streaming one its output stream.
 */
export function served<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  interceptors: readonly Interceptor[],
): ServiceImpl<S> {
  const chain = withSingleInput(interceptors);
  const out: Record<string, unknown> = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName] as (...a: unknown[]) => unknown;
    const spec = createMethodImplSpec(method, fn.bind(impl) as never);
    out[method.localName] =
      method.methodKind === "unary"
        ? (req: unknown, ctx: HandlerContext) =>
            invokeUnaryImplementation(spec as never, ctx, req as never, chain)
        : (req: unknown, ctx: HandlerContext) =>
            transformInvokeImplementation(spec, ctx, chain)(createAsyncIterable([req as never]));
  }
  return out as ServiceImpl<S>;
}

/** An audit logger whose JSON lines the test reads back. */
export { logSink as auditSink } from "../helpers/log-sink.js";

/** The refusal a call ends with. */
export async function refusal(call: () => unknown): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    if (err instanceof ConnectError) return err;
    throw err;
  }
  throw new Error("expected the call to be refused");
}

/** One open WatchToken stream of the fake, for the test to end. */
export interface FakeStream {
  appId: string;
  end(): void;
  fail(err: unknown): void;
}

/** Handlers that record who called them and return a token. */
export function fakeTokenService(): {
  impl: ServiceImpl<typeof TokenService>;
  calls: Array<{ method: string; client: string | undefined }>;
  streams: FakeStream[];
} {
  const calls: Array<{ method: string; client: string | undefined }> = [];
  const streams: FakeStream[] = [];
  const token = (appId: string) => ({ appId, value: TOKEN_VALUE, fingerprint: "4e8b" });
  return {
    calls,
    streams,
    impl: {
      getToken(req, ctx) {
        calls.push({ method: "GetToken", client: ctx.values.get(clientKey) });
        return { token: token(req.appId) };
      },
      invalidateToken(req, ctx) {
        calls.push({ method: "InvalidateToken", client: ctx.values.get(clientKey) });
        return { token: token(req.appId), refreshed: true };
      },
      ackToken(_req, ctx) {
        calls.push({ method: "AckToken", client: ctx.values.get(clientKey) });
        return { renewWithinSeconds: 60 };
      },
      async *watchToken(req, ctx) {
        calls.push({ method: "WatchToken", client: ctx.values.get(clientKey) });
        yield { token: token(req.appId) };
        await new Promise<void>((resolve, reject) => {
          streams.push({ appId: req.appId, end: resolve, fail: reject });
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
        });
      },
    },
  };
}

export function fakeAdminService(): {
  impl: ServiceImpl<typeof AdminService>;
  calls: Array<{ method: string; client: string | undefined }>;
  failWith: { error: unknown };
} {
  const calls: Array<{ method: string; client: string | undefined }> = [];
  const failWith: { error: unknown } = { error: undefined };
  const run = <T>(method: string, ctx: HandlerContext, result: T): T => {
    calls.push({ method, client: ctx.values.get(clientKey) });
    if (failWith.error !== undefined) throw failWith.error;
    return result;
  };
  return {
    calls,
    failWith,
    impl: {
      getStatus: (_req, ctx) => run("GetStatus", ctx, {}),
      forceRefresh: (req, ctx) =>
        run("ForceRefresh", ctx, { token: { appId: req.appId, value: TOKEN_VALUE } }),
      clearQuota: (_req, ctx) => run("ClearQuota", ctx, {}),
    },
  };
}
