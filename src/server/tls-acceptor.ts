import type * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "../shared/logger.js";
import { SNIFF_TIMEOUT_MS } from "./sniff.js";
import type { TlsMaterial, TlsOptions } from "./tls.js";
import { TLS_POLICY } from "./tls-policy.js";

export interface TlsAcceptor {
  /** Starts the TLS handshake on a TCP connection just accepted; `onSecure` gets the secured socket. */
  accept(tcp: net.Socket, onSecure: (socket: tls.TLSSocket) => void): void;
  /** Certificate, key and CA for connections accepted from now on. */
  setSecureContext(material: TlsMaterial): void;
}

/**
 * TLS for accepted connections, with {@link TLS_POLICY}. A `tls.Server` that
 * never listens does the handshakes (and, with `requireClientCert`, refuses
 * clients without a certificate that verifies); a connection that fails or
 * stalls its handshake is destroyed, and `onSecure` is never called for it.
 * Both listeners use it, so both apply the same protocol versions and suites.
 */
export function tlsAcceptor(
  options: TlsOptions,
  material: TlsMaterial,
  logger: Logger,
  alpnProtocols: readonly string[],
): TlsAcceptor {
  const server = tls.createServer({
    ...material,
    ...TLS_POLICY,
    ALPNProtocols: [...alpnProtocols],
    requestCert: material.ca !== undefined,
    rejectUnauthorized: options.requireClientCert ?? false,
    handshakeTimeout: SNIFF_TIMEOUT_MS,
  });
  /**
   * Connections in handshake, by their TCP 4-tuple: the tls.Server wraps the
   * TCP socket in a TLSSocket of its own, and reports only the latter.
   */
  const handshaking = new Map<string, (socket: tls.TLSSocket) => void>();
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const key = tupleOf(socket);
    const onSecure = handshaking.get(key);
    handshaking.delete(key);
    if (!onSecure) {
      socket.destroy();
      return;
    }
    socket.on("error", (err) => logger.debug({ err }, "connection error"));
    onSecure(socket);
  });
  server.on("tlsClientError", (err, socket) => {
    logger.debug({ err, address: socket.remoteAddress }, "TLS handshake failed");
    socket.destroy();
  });
  return {
    accept(tcp, onSecure) {
      const key = tupleOf(tcp);
      handshaking.set(key, onSecure);
      tcp.once("close", () => handshaking.delete(key));
      server.emit("connection", tcp);
    },
    setSecureContext(next) {
      // Checked by ReloadingTlsFiles; a throw here would still keep the old context.
      try {
        server.setSecureContext({ ...next, ...TLS_POLICY });
      } catch (err) {
        logger.error({ err }, "cannot use the new TLS files; keeping the previous ones");
      }
    },
  };
}

/** A connection's TCP 4-tuple, the same on its TCP socket and on the TLSSocket over it. */
export function tupleOf(socket: {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}): string {
  return `${socket.localAddress}|${socket.localPort}|${socket.remoteAddress}|${socket.remotePort}`;
}
