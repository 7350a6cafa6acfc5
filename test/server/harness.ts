import { Writable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import {
  Code,
  ConnectError,
  createClient,
  type ServiceImpl,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { pino } from "pino";
import {
  file_grpc_health_v1_health,
  Health,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import {
  file_tokenbroker_v1_token_service,
  type GetTokenResponse,
  TokenKind,
  TokenService,
  type WatchTokenResponse,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  HealthStatus,
  healthRegistration,
  type Peer,
  peerKey,
  type RunningServer,
  reflectionRegistrations,
  registration,
  ServingStatus,
  startConnectServer,
  startGrpcServer,
} from "../../src/server/index.js";
import type { Logger } from "../../src/shared/logger.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/** What the test TokenService saw of one call. */
export interface CallRecord {
  readonly method: string;
  readonly appId: string;
  readonly signal: AbortSignal;
  readonly header: Headers;
  readonly peer: Peer | undefined;
  readonly protocol: string;
  readonly timeoutMs: number | undefined;
}

/** A secret that must never reach a client. */
export const LEAKED_SECRET = "postgres://broker:hunter2@db";

/**
 * A TokenService whose behaviour is chosen by `app_id`, for transport tests:
 * - GetToken: "missing" → NOT_FOUND, "" → INVALID_ARGUMENT, "boom" → a plain
 *   Error, "hang" → waits for its signal and throws the reason, "slow:<ms>" →
 *   answers after <ms> ignoring its signal, anything else → a token.
 * - WatchToken: versions 1..3, then "finite" returns, "fail" throws
 *   FAILED_PRECONDITION after version 2, "stubborn" never ends and ignores its
 *   signal, anything else returns once its signal aborts.
 */
export function testTokenService(calls: CallRecord[]): ServiceImpl<typeof TokenService> {
  const record = (
    method: string,
    appId: string,
    ctx: Parameters<ServiceImpl<typeof TokenService>["getToken"]>[1],
  ) =>
    calls.push({
      method,
      appId,
      signal: ctx.signal,
      header: ctx.requestHeader,
      peer: ctx.values.get(peerKey),
      protocol: ctx.protocolName,
      timeoutMs: ctx.timeoutMs(),
    });
  const token = (appId: string, version: number) => ({
    appId,
    kind: TokenKind.ACCESS_TOKEN,
    value: `token-of-${appId}-v${version}`,
    version: BigInt(version),
  });
  return {
    async getToken(req, ctx) {
      record("GetToken", req.appId, ctx);
      if (req.appId === "missing") {
        throw new ConnectError(`app "missing" is not configured`, Code.NotFound);
      }
      if (req.appId === "") throw new ConnectError("app_id is required", Code.InvalidArgument);
      if (req.appId === "boom") throw new Error(`cannot connect to ${LEAKED_SECRET}`);
      if (req.appId === "hang") {
        await untilAborted(ctx.signal);
        throw ctx.signal.reason;
      }
      if (req.appId.startsWith("slow:")) await delay(Number(req.appId.slice(5)));
      return { token: token(req.appId, 1) };
    },
    async invalidateToken(req, ctx) {
      record("InvalidateToken", req.appId, ctx);
      ctx.responseHeader.set("x-broker", "test");
      ctx.responseTrailer.set("x-outcome", "refreshed");
      return { token: token(req.appId, 2), refreshed: true };
    },
    async ackToken(req, ctx) {
      record("AckToken", req.appId, ctx);
      return { renewWithinSeconds: 60 };
    },
    async *watchToken(req, ctx) {
      record("WatchToken", req.appId, ctx);
      for (let version = 1; version <= 3; version++) {
        if (req.appId === "fail" && version === 3) {
          throw new ConnectError("upstream rejected the credentials", Code.FailedPrecondition);
        }
        yield { token: token(req.appId, version) };
      }
      if (req.appId === "finite") return;
      if (req.appId === "stubborn") await new Promise(() => {});
      await untilAborted(ctx.signal);
    },
  };
}

export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** A logger whose lines tests can read back. */
export function captureLogs(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "debug" }, sink), lines };
}

export interface Servers {
  readonly grpc: RunningServer;
  readonly connect: RunningServer;
  readonly health: HealthStatus;
  readonly calls: CallRecord[];
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Both listeners on port 0 with the test TokenService, health and reflection. */
export async function startServers(
  options: { corsAllowedOrigins?: string[]; maxReceiveMessageBytes?: number } = {},
): Promise<Servers> {
  const calls: CallRecord[] = [];
  const { logger, lines } = captureLogs();
  const health = new HealthStatus();
  health.set(TokenService.typeName, ServingStatus.SERVING);
  const services = [
    registration(TokenService, testTokenService(calls)),
    healthRegistration(health),
    ...reflectionRegistrations([file_tokenbroker_v1_token_service, file_grpc_health_v1_health]),
  ];
  const common = { host: "127.0.0.1", port: 0, services, logger, health };
  const grpc = await startGrpcServer({
    ...common,
    ...(options.maxReceiveMessageBytes && {
      maxReceiveMessageBytes: options.maxReceiveMessageBytes,
    }),
  });
  const connect = await startConnectServer({ ...common, ...options });
  return {
    grpc,
    connect,
    health,
    calls,
    logs: lines,
    close: async () => {
      await Promise.all([grpc.close({ graceMs: 0 }), connect.close({ graceMs: 0 })]);
    },
  };
}

/** Per-call options every test client understands. */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** TokenService and Health as seen by one kind of client. */
export interface TestClient {
  getToken(appId: string, options?: CallOptions): Promise<GetTokenResponse>;
  watchToken(appId: string, options?: CallOptions): AsyncIterable<WatchTokenResponse>;
  healthWatch(service: string, options?: CallOptions): AsyncIterable<HealthCheckResponse>;
  close(): void;
}

export interface ClientKind {
  readonly name: string;
  /** Which listener the client talks to. */
  readonly listener: "grpc" | "connect";
  /** `ctx.protocolName` the handler should see. */
  readonly protocol: "grpc" | "grpc-web" | "connect";
  make(url: string): TestClient;
}

function grpcJs(url: string): TestClient {
  const tokens = createGrpcJsClient(TokenService, url);
  const health = createGrpcJsClient(Health, url);
  const opts = (o: CallOptions = {}) => ({
    ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }),
    ...(o.signal && { signal: o.signal }),
    ...(o.headers && { metadata: o.headers }),
  });
  return {
    getToken: (appId, o) => tokens.getToken({ appId, kind: TokenKind.ACCESS_TOKEN }, opts(o)),
    watchToken: (appId, o) => tokens.watchToken({ appId, kind: TokenKind.ACCESS_TOKEN }, opts(o)),
    healthWatch: (service, o) => health.watch({ service }, opts(o)),
    close: () => {
      tokens.close();
      health.close();
    },
  };
}

function connectNode(transport: Transport): TestClient {
  const tokens = createClient(TokenService, transport);
  const health = createClient(Health, transport);
  return {
    getToken: (appId, o) => tokens.getToken({ appId, kind: TokenKind.ACCESS_TOKEN }, o),
    watchToken: (appId, o) => tokens.watchToken({ appId, kind: TokenKind.ACCESS_TOKEN }, o),
    healthWatch: (service, o) => health.watch({ service }, o),
    close: () => {},
  };
}

/** Every client the transport layer must serve. */
export const CLIENT_KINDS: readonly ClientKind[] = [
  { name: "grpc-js on the grpc port", listener: "grpc", protocol: "grpc", make: grpcJs },
  {
    name: "connect-node gRPC on the grpc port",
    listener: "grpc",
    protocol: "grpc",
    make: (baseUrl) => connectNode(createGrpcTransport({ baseUrl })),
  },
  { name: "grpc-js on the connect port", listener: "connect", protocol: "grpc", make: grpcJs },
  {
    name: "connect-node gRPC on the connect port",
    listener: "connect",
    protocol: "grpc",
    make: (baseUrl) => connectNode(createGrpcTransport({ baseUrl })),
  },
  {
    name: "Connect over HTTP/1.1",
    listener: "connect",
    protocol: "connect",
    make: (baseUrl) => connectNode(createConnectTransport({ baseUrl, httpVersion: "1.1" })),
  },
  {
    name: "Connect over HTTP/2",
    listener: "connect",
    protocol: "connect",
    make: (baseUrl) => connectNode(createConnectTransport({ baseUrl, httpVersion: "2" })),
  },
  {
    name: "gRPC-Web over HTTP/1.1",
    listener: "connect",
    protocol: "grpc-web",
    make: (baseUrl) => connectNode(createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })),
  },
];

/** Code and message of an error from either client library. */
export function statusOf(err: unknown): { code: number; message: string } {
  if (err instanceof ConnectError) return { code: err.code, message: err.rawMessage };
  const e = err as { code?: unknown; details?: unknown };
  if (typeof e.code === "number" && typeof e.details === "string") {
    return { code: e.code, message: e.details };
  }
  throw err;
}

/** The status a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return statusOf(err);
  }
  throw new Error("expected the call to fail");
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await delay(10);
  }
}
