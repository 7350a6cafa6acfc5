import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.js";
import { toGrpcService } from "./grpc-adapter.js";
import type { HealthStatus } from "./health.js";
import type { ServiceRegistration } from "./registration.js";
import { type CloseOptions, gracefulCloser, ShutdownSignals } from "./shutdown.js";
import { loadTlsMaterial, ReloadingTlsFiles, type TlsOptions } from "./tls.js";

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
   * Close connections that have had no call for this long. Besides tidying,
   * this reclaims connections Node's http2 abandons after answering a
   * protocol error with GOAWAY (it neither closes nor reads them again).
   */
  readonly idleConnectionMs?: number;
  /** If given, `close()` drains it first, so health watchers see NOT_SERVING. */
  readonly health?: HealthStatus;
  /** Serve over TLS (optionally mutual), reloading the files; plaintext without it. */
  readonly tls?: TlsOptions;
}

/**
 * Serves `services` over gRPC (HTTP/2) with grpc-js, in plaintext or over TLS.
 * With TLS the credentials come from certificate providers (see
 * {@link ReloadingTlsFiles}), so renewed certificate files are used for new
 * connections without a restart.
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const logger = options.logger.child({ component: "grpc-server" });
  const signals = new ShutdownSignals();
  const serverOptions: grpc.ServerOptions = {};
  if (options.maxReceiveMessageBytes !== undefined) {
    serverOptions["grpc.max_receive_message_length"] = options.maxReceiveMessageBytes;
  }
  if (options.idleConnectionMs !== undefined) {
    serverOptions["grpc.max_connection_idle_ms"] = options.idleConnectionMs;
  }
  const server = new grpc.Server(serverOptions);
  for (const reg of options.services) {
    const { definition, implementation } = toGrpcService(reg, { logger, shutdown: signals });
    server.addService(definition, implementation);
  }
  let tlsFiles: ReloadingTlsFiles | undefined;
  let credentials = grpc.ServerCredentials.createInsecure();
  if (options.tls) {
    tlsFiles = new ReloadingTlsFiles(options.tls, await loadTlsMaterial(options.tls), logger);
    credentials = grpc.experimental.createCertificateProviderServerCredentials(
      tlsFiles,
      tlsFiles.hasClientCa ? tlsFiles : null,
      options.tls.requireClientCert ?? false,
    );
  }
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${hostForUrl(options.host)}:${options.port}`, credentials, (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
  } catch (err) {
    server.forceShutdown();
    tlsFiles?.close();
    throw err;
  }
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
        // tryShutdown stops the listener and sends GOAWAY on every connection;
        // calls in flight continue. Its callback runs once all sessions closed.
        forced = resolve;
        server.tryShutdown(() => resolve());
      }).finally(() => tlsFiles?.close()),
    forceClose: () => {
      server.forceShutdown();
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
