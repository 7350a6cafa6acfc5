import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { RefusalLog } from "../security/refusal-log.js";
import { systemClock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AcceptGate } from "./accept-gate.js";
import { toGrpcService } from "./grpc-adapter.js";
import { GrpcConnections } from "./grpc-connections.js";
import type { HealthStatus } from "./health.js";
import type { ServiceRegistration } from "./registration.js";
import { type CloseOptions, gracefulCloser, ShutdownSignals } from "./shutdown.js";
import { loadTlsMaterial, ReloadingTlsFiles, type TlsOptions } from "./tls.js";
import { tlsAcceptor } from "./tls-acceptor.js";

/** A listening server. */
export interface RunningServer {
  /** The bound port (the real one when asked for port 0). */
  readonly port: number;
  /** `http://host:port`, or `https://host:port` with TLS, for clients. */
  readonly url: string;
  /**
   * Stops accepting connections and calls at once, ends open streams with
   * UNAVAILABLE, lets unary calls finish for up to `graceMs`, then aborts
   * them and drops the connections. Idempotent; resolves when all is closed.
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  /** Largest request message accepted; grpc-js defaults to 4 MiB. */
  readonly maxReceiveMessageBytes?: number;
  /**
   * Close connections that have had no call in flight for this long. Besides
   * tidying, this reclaims connections Node's http2 abandons after answering
   * a protocol error with GOAWAY (it neither closes nor reads them again), and
   * ones whose client left streams half-open. Default {@link DEFAULT_IDLE_MS}.
   */
  readonly idleConnectionMs?: number;
  /** If given, `close()` drains it first, so health watchers see NOT_SERVING. */
  readonly health?: HealthStatus;
  /** Serve over TLS (optionally mutual), reloading the files; plaintext without it. */
  readonly tls?: TlsOptions;
  /** Applied to every accepted connection before anything else (the IP allowlist). */
  readonly acceptGate?: AcceptGate;
  /** HTTP/2 streams a client may have open at once on one connection; default {@link DEFAULT_MAX_STREAMS}. */
  readonly maxConcurrentStreams?: number;
  /** A call whose request has not arrived in this time gets DEADLINE_EXCEEDED; default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  readonly requestTimeoutMs?: number;
  /** Where stalled requests are audited (aggregated per peer); default: `logger`. */
  readonly refusals?: RefusalLog;
}

export const DEFAULT_IDLE_MS = 60_000;
export const DEFAULT_MAX_STREAMS = 100;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Serves `services` over gRPC (HTTP/2) with grpc-js, in plaintext or over TLS.
 * The broker's own `net.Server` accepts connections, so that the allowlist
 * applies before any TLS or HTTP/2 state exists, does the TLS handshake (the
 * same policy and reloading files as the Connect port, see
 * {@link ReloadingTlsFiles}), and hands each connection to grpc-js through its
 * connection injector.
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const logger = options.logger.child({ component: "grpc-server" });
  const signals = new ShutdownSignals();
  const serverOptions: grpc.ServerOptions = {};
  if (options.maxReceiveMessageBytes !== undefined) {
    serverOptions["grpc.max_receive_message_length"] = options.maxReceiveMessageBytes;
  }
  const connections = new GrpcConnections({
    idleMs: options.idleConnectionMs ?? DEFAULT_IDLE_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    refusals: options.refusals ?? new RefusalLog({ audit: logger, clock: systemClock }),
  });
  // Idle connections close gracefully (GOAWAY); GrpcConnections reaps those
  // that grpc-js keeps because of streams a stalling client left half-open.
  serverOptions["grpc.max_connection_idle_ms"] = options.idleConnectionMs ?? DEFAULT_IDLE_MS;
  serverOptions["grpc.max_concurrent_streams"] =
    options.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS;
  serverOptions.interceptors = [connections.interceptor];
  const server = new grpc.Server(serverOptions);
  for (const reg of options.services) {
    const { definition, implementation } = toGrpcService(reg, { logger, shutdown: signals });
    server.addService(definition, implementation);
  }
  // TLS is done here, so grpc-js sees plaintext credentials (and TLSSockets).
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  let tlsFiles: ReloadingTlsFiles | undefined;
  let secure: ReturnType<typeof tlsAcceptor> | undefined;
  if (options.tls) {
    tlsFiles = new ReloadingTlsFiles(options.tls, await loadTlsMaterial(options.tls), logger);
    secure = tlsAcceptor(options.tls, tlsFiles.current(), logger, ["h2"]);
  }
  let closing = false;
  const listener = net.createServer((tcp) => {
    tcp.on("error", (err) => logger.debug({ err }, "connection error"));
    if (closing || (options.acceptGate && !options.acceptGate.admit(tcp))) {
      tcp.destroy();
      return;
    }
    connections.add(tcp);
    if (!secure) {
      injector.injectConnection(tcp);
      return;
    }
    secure.accept(tcp, (socket) => {
      // gRPC is HTTP/2 only; grpc-js' own TLS server refuses other protocols too.
      if (closing || socket.alpnProtocol !== "h2") socket.destroy();
      else injector.injectConnection(socket);
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(options.port, options.host, () => {
        listener.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    injector.destroy();
    server.forceShutdown();
    tlsFiles?.close();
    throw err;
  }
  listener.on("error", (err) => logger.error({ err }, "listener error"));
  tlsFiles?.onChange((material) => secure?.setSecureContext(material));
  const port = (listener.address() as net.AddressInfo).port;
  const url = `${tlsFiles ? "https" : "http"}://${hostForUrl(options.host)}:${port}`;
  logger.info(
    { url, ...(options.tls && { clientCerts: clientCertMode(options.tls) }) },
    "gRPC listener started",
  );

  let forced: (() => void) | undefined;
  const close = gracefulCloser({
    signals,
    logger,
    health: options.health,
    stopAccepting: () =>
      new Promise<void>((resolve) => {
        closing = true;
        tlsFiles?.close();
        // tryShutdown sends GOAWAY on every connection; calls in flight
        // continue. Its callback runs once all sessions closed; the listener's
        // once every accepted socket has.
        forced = resolve;
        let pending = 2;
        const done = () => {
          if (--pending === 0) resolve();
        };
        listener.close(done);
        server.tryShutdown(done);
      }),
    forceClose: () => {
      server.forceShutdown();
      for (const socket of connections.sockets()) socket.destroy();
      forced?.();
    },
  });
  return { port, url, close };
}

/** How a TLS listener treats client certificates, for its start-up log line. */
export function clientCertMode(tls: TlsOptions): "required" | "optional" | "not requested" {
  if (tls.clientCaFile === undefined) return "not requested";
  return tls.requireClientCert ? "required" : "optional";
}

/** IPv6 literals need brackets in `host:port` and URLs. */
export function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
