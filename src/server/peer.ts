import type { PeerCertificate } from "node:tls";
import { createContextKey } from "@connectrpc/connect";
import { memoizeParse } from "../shared/memo.js";

/** The remote end of the connection a call arrived on. */
export interface Peer {
  /** IP address as the socket reports it (IPv4, or IPv6 without brackets). */
  readonly address: string;
  readonly port: number | undefined;
  /**
   * The subject CN of the client's TLS certificate. Present only on a TLS
   * listener with `tls.clientCaFile`, when the client presented a certificate
   * that verified against that CA bundle, and whose subject has exactly one
   * non-empty CN. Absent for plaintext, for clients without a certificate, and
   * (when client certificates are optional) for ones that do not verify.
   */
  readonly tlsIdentity?: string;
}

/**
 * Context value with the caller's address. Both adapters set it on every call:
 * `ctx.values.get(peerKey)` in a handler; `undefined` only if the socket had
 * already closed when the call arrived.
 */
export const peerKey = createContextKey<Peer | undefined>(undefined, { description: "peer" });

/** What {@link peerOf} reads: a net.Socket, a TLSSocket, or http2's socket proxy. */
export interface PeerSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** TLSSocket only: true once the client certificate verified against the configured CA. */
  readonly authorized?: boolean;
  getPeerCertificate?(): PeerCertificate;
}

/** A Peer from a socket's `remoteAddress` / `remotePort` and, over TLS, its client certificate. */
export function peerOf(socket: PeerSocket): Peer | undefined {
  if (socket.remoteAddress === undefined) return undefined;
  const peer = { address: socket.remoteAddress, port: socket.remotePort };
  // `authorized` is only ever true when a client certificate was requested and verified.
  const tlsIdentity =
    socket.authorized === true ? tlsIdentityOf(socket.getPeerCertificate?.()) : undefined;
  return tlsIdentity === undefined ? peer : { ...peer, tlsIdentity };
}

/**
 * A Peer from grpc-js `call.getPeer()` and `call.getAuthContext()`. For TCP the
 * peer is `${remoteAddress}:${remotePort}` (IPv6 without brackets, so the port
 * is after the last colon); "unknown" once the socket is gone. grpc-js gives
 * `sslPeerCertificate` only for a client certificate that verified.
 */
export function parseGrpcJsPeer(
  peer: string,
  auth?: { sslPeerCertificate?: PeerCertificate | undefined } | null,
): Peer | undefined {
  if (peer === "" || peer === "unknown") return undefined;
  const cert = auth?.sslPeerCertificate;
  // Every call on a connection has the same peer string: parse it once.
  return cert === undefined ? parsePlainPeer(peer) : parsePeer(peer, cert);
}

/** Peers without a client certificate, by grpc-js peer string. */
const parsePlainPeer = memoizeParse((peer) => parsePeer(peer, undefined));

function parsePeer(peer: string, cert: PeerCertificate | undefined): Peer {
  const match = /^(.*):(\d+)$/.exec(peer);
  const base = match?.[1]
    ? { address: match[1], port: Number(match[2]) }
    : { address: peer, port: undefined };
  const tlsIdentity = tlsIdentityOf(cert);
  return tlsIdentity === undefined ? base : { ...base, tlsIdentity };
}

/**
 * The identity handlers see for a client certificate: its subject CN, only if
 * the subject has exactly one non-empty CN (Node gives an array for several,
 * which would be ambiguous).
 */
export function tlsIdentityOf(cert: PeerCertificate | undefined): string | undefined {
  const cn: unknown = cert?.subject?.CN;
  return typeof cn === "string" && cn !== "" ? cn : undefined;
}
