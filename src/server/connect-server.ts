import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { RefusalLog } from "../security/refusal-log.js";
import { systemClock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AcceptGate } from "./accept-gate.js";
import { createConnectHandler, type NodeHandler } from "./connect-handler.js";
import { destroyWhenIdle, whenRequestStalls } from "./connection-timers.js";
import { withCors } from "./cors.js";
import { withGrpcJsMessageEncoding } from "./grpc-message.js";
import {
  clientCertMode,
  DEFAULT_MAX_STREAMS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  hostForUrl,
  type RunningServer,
} from "./grpc-server.js";
import type { HealthStatus } from "./health.js";
import type { ServiceRegistration } from "./registration.js";
import { refuseWhenClosing, rejectMalformed } from "./request-guards.js";
import { gracefulCloser, ShutdownSignals } from "./shutdown.js";
import { type SniffedProtocol, sniffProtocol } from "./sniff.js";
import { loadTlsMaterial, ReloadingTlsFiles, type TlsOptions } from "./tls.js";
import { type TlsAcceptor, tlsAcceptor } from "./tls-acceptor.js";

export interface ConnectServerOptions {
  readonly host: string;
  readonly port: number;
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  /** Browser origins allowed by CORS (exact, or "*"); default none. */
  readonly corsAllowedOrigins?: readonly string[];
  /** Largest request message accepted; connect-node's default is ~4 GiB. */
  readonly maxReceiveMessageBytes?: number;
  /**
   * Destroy HTTP/2 sessions that have had no open stream for this long (also
   * reclaims sessions Node's http2 abandons after a protocol-error GOAWAY).
   */
  readonly idleConnectionMs?: number;
  /** If given, `close()` drains it first, so health watchers see NOT_SERVING. */
  readonly health?: HealthStatus;
  /**
   * Serve over TLS (optionally mutual), reloading the files: HTTP/2 or
   * HTTP/1.1 by ALPN (HTTP/1.1 when the client offers none). Plaintext
   * (HTTP/2 prior knowledge and HTTP/1.1 by sniffing) without it.
   */
  readonly tls?: TlsOptions;
  /** Applied to every accepted connection before anything else (the IP allowlist). */
  readonly acceptGate?: AcceptGate;
  /** HTTP/2 streams a client may have open at once on one connection (HTTP/1.1 has one request at a time). */
  readonly maxConcurrentStreams?: number;
  /** A request whose body has not fully arrived in this time is reset (HTTP/2) or refused with 408 (HTTP/1.1). */
  readonly requestTimeoutMs?: number;
  /** Where stalled requests are audited (aggregated per peer); default: `logger`. */
  readonly refusals?: RefusalLog;
  /**
   * Plain HTTP routes served beside the RPCs (the WeChat-compatible façade):
   * called first for every request; returns true for a request it answers.
   */
  readonly httpRoutes?: HttpRoutes;
}

/** Answers the requests it claims (returning true); the rest go to the RPC handler. */
export type HttpRoutes = (
  req: Parameters<NodeHandler>[0],
  res: Parameters<NodeHandler>[1],
) => boolean;

/** One accepted connection. */
interface Connection {
  /** The accepted TCP socket. */
  readonly tcp: net.Socket;
  /** What the http servers read: the TLSSocket over TLS, else `tcp`. */
  socket: net.Socket;
  /** Known once sniffed (plaintext) or negotiated (TLS). */
  protocol: SniffedProtocol | undefined;
}

/**
 * Serves `services` over Connect, gRPC-Web and gRPC on one port, for HTTP/1.1
 * and HTTP/2 alike. Node's h2c server cannot speak HTTP/1.1, so a `net.Server`
 * accepts and hands each connection to an http2 or an http server: in
 * plaintext by its first bytes, with TLS by the protocol negotiated (ALPN)
 * once a `tls.Server` has done the handshake. Both run the same handler, and
 * close() treats both modes alike.
 */
export async function startConnectServer(options: ConnectServerOptions): Promise<RunningServer> {
  const logger = options.logger.child({ component: "connect-server" });
  const signals = new ShutdownSignals();
  let closing = false;
  const connectHandler = createConnectHandler({
    services: options.services,
    logger,
    shutdown: signals,
    maxReceiveMessageBytes: options.maxReceiveMessageBytes,
  });
  const rpc = withCors(withGrpcJsMessageEncoding(connectHandler), options.corsAllowedOrigins ?? []);
  const routes = options.httpRoutes;
  const handler = refuseWhenClosing(
    rejectMalformed(
      routes === undefined
        ? rpc
        : (req, res) => {
            if (!routes(req, res)) rpc(req, res);
          },
      logger,
    ),
    () => closing,
  );

  /** Every accepted connection, by its TCP socket. */
  const connections = new Map<net.Socket, Connection>();
  const sessions = new Set<http2.ServerHttp2Session>();
  /** HTTP/1.1 responses in flight, by the socket the http server reads. */
  const busy = new Map<net.Socket, http.ServerResponse>();

  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const refusals = options.refusals ?? new RefusalLog({ audit: logger, clock: systemClock });
  const stalled = (address: string | undefined, outcome: string) =>
    refusals.record(
      { event: "request_timeout", address: address ?? "unknown" },
      { timeoutMs: requestTimeoutMs, outcome },
      "security: request did not arrive in time",
    );
  const h2 = http2.createServer(
    { settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS } },
    handler,
  );
  h2.on("stream", (stream: http2.ServerHttp2Stream) => {
    // A response sent before the request was read to its end (a message too
    // large, a malformed request) would leave the client blocked on flow
    // control and the stream open, counted against maxConcurrentStreams: the
    // rest of the body is read and dropped, so the stream can close (a client
    // that never ends it meets the request timeout below).
    stream.once("finish", () => {
      if (!stream.readableEnded) stream.resume();
    });
    const peer = stream.session?.socket?.remoteAddress;
    whenRequestStalls(stream, requestTimeoutMs, () => {
      stalled(peer, "stream_reset");
      stream.close(http2.constants.NGHTTP2_CANCEL);
    });
  });
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (closing) session.close();
    if (options.idleConnectionMs !== undefined) destroyWhenIdle(session, options.idleConnectionMs);
  });
  const h1 = http.createServer();
  // Node starts enforcing headersTimeout / requestTimeout (slowloris protection)
  // when an http server emits "listening". This one never listens itself, as
  // connections are handed to it, so start that tracking by hand; close()
  // stops it again.
  h1.emit("listening");
  // Registered before the handler, so headers can still be set.
  h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    busy.set(socket, res);
    whenRequestStalls(req, requestTimeoutMs, () => {
      stalled(socket.remoteAddress, "http_408");
      if (!res.headersSent) {
        res.writeHead(408, { "content-type": "text/plain; charset=utf-8", Connection: "close" });
        res.end(`the request did not arrive within ${requestTimeoutMs} ms\n`);
      }
      socket.destroySoon();
    });
    if (closing) res.setHeader("Connection", "close");
    res.once("close", () => {
      busy.delete(socket);
      if (closing) socket.destroySoon();
    });
  });
  h1.on("request", handler);

  /** Hands a connection whose protocol is known to the matching http server. */
  const dispatch = (conn: Connection, socket: net.Socket, protocol: SniffedProtocol) => {
    conn.socket = socket;
    conn.protocol = protocol;
    if (closing) socket.destroy();
    else if (protocol === "h2") h2.emit("connection", socket);
    else h1.emit("connection", socket);
  };

  let tlsFiles: ReloadingTlsFiles | undefined;
  let secure: TlsAcceptor | undefined;
  if (options.tls) {
    tlsFiles = new ReloadingTlsFiles(options.tls, await loadTlsMaterial(options.tls), logger);
    secure = tlsAcceptor(options.tls, tlsFiles.current(), logger, ["h2", "http/1.1"]);
  }

  const listener = net.createServer((tcp) => {
    if (options.acceptGate && !options.acceptGate.admit(tcp)) return;
    const conn: Connection = { tcp, socket: tcp, protocol: undefined };
    connections.set(tcp, conn);
    tcp.once("close", () => connections.delete(tcp));
    // A reset before the http servers attach their own handlers must not
    // become an uncaught exception.
    tcp.on("error", (err) => logger.debug({ err }, "connection error"));
    if (secure) {
      // HTTP/1.1 when the client offers no ALPN.
      secure.accept(tcp, (socket) =>
        dispatch(conn, socket, socket.alpnProtocol === "h2" ? "h2" : "http/1.1"),
      );
      return;
    }
    sniffProtocol(tcp, (protocol) => {
      dispatch(conn, tcp, protocol);
      // The http server listens for "data" but does not undo our pause().
      if (protocol === "http/1.1" && !closing) tcp.resume();
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
    tlsFiles?.close();
    throw err;
  }
  listener.on("error", (err) => logger.error({ err }, "listener error"));
  // Renewed certificate files apply to new connections; open ones keep theirs.
  tlsFiles?.onChange((material) => secure?.setSecureContext(material));
  const port = (listener.address() as net.AddressInfo).port;
  const url = `${secure ? "https" : "http"}://${hostForUrl(options.host)}:${port}`;
  logger.info(
    { url, ...(options.tls && { clientCerts: clientCertMode(options.tls) }) },
    "Connect/gRPC-Web/gRPC listener started",
  );

  const close = gracefulCloser({
    signals,
    logger,
    health: options.health,
    stopAccepting: () =>
      new Promise<void>((resolve) => {
        closing = true;
        tlsFiles?.close();
        // Resolves once every accepted socket has closed.
        listener.close(() => resolve());
        h1.close();
        for (const session of sessions) session.close();
        // Tell HTTP/1.1 clients not to reuse the connection of a call in flight.
        for (const res of busy.values()) {
          if (!res.headersSent) res.setHeader("Connection", "close");
        }
        for (const conn of connections.values()) {
          if (conn.protocol === "h2" || busy.has(conn.socket)) continue;
          // TLS handshakes in progress go at once; connections not yet handed
          // to a protocol, and idle HTTP/1.1 keep-alives, after a clean end.
          if (secure && conn.protocol === undefined) conn.tcp.destroy();
          else conn.socket.destroySoon();
        }
      }),
    forceClose: () => {
      for (const session of sessions) session.destroy();
      for (const conn of connections.values()) conn.socket.destroy();
    },
  });
  return { port, url, close };
}
