import type { Socket } from "node:net";

/** How long a new connection may take to send enough bytes to pick a protocol. */
export const SNIFF_TIMEOUT_MS = 10_000;

/** Every HTTP/2 connection starts with this client preface (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** Enough of the preface to tell it from any HTTP/1.x request line. */
const DECISIVE_BYTES = "PRI * HTTP/2.0".length;

export type SniffedProtocol = "h2" | "http/1.1";

/**
 * Reads the first bytes of `socket` until they either match the HTTP/2 preface
 * or cannot, puts them back (`unshift`), pauses the socket and calls `onProtocol`
 * once. A connection that sends too little within SNIFF_TIMEOUT_MS, or closes,
 * is destroyed without a call.
 */
export function sniffProtocol(
  socket: Socket,
  onProtocol: (protocol: SniffedProtocol) => void,
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
  timer.unref();
  const done = (protocol: SniffedProtocol) => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("close", onClose);
    socket.pause();
    socket.unshift(seen);
    onProtocol(protocol);
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, DECISIVE_BYTES);
    if (!seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) done("http/1.1");
    else if (n === DECISIVE_BYTES) done("h2");
  };
  const onClose = () => clearTimeout(timer);
  socket.on("data", onData);
  socket.once("close", onClose);
}
