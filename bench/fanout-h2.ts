/**
 * A minimal gRPC client on node:http2, for the fan-out benchmark: thousands of
 * server streams multiplexed over a few connections, with the arrival time of
 * each message taken in the `data` handler before any decoding, so the client
 * adds as little as possible to what is measured.
 */
import http2 from "node:http2";
import { nowMs } from "./fanout-protocol.js";

export function connectH2(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      // Thousands of streams per connection: lift the per-session memory cap
      // (in MB) that would otherwise answer with ENHANCE_YOUR_CALM.
      maxSessionMemory: 1024,
      peerMaxConcurrentStreams: 100_000,
    });
    session.once("connect", () => {
      session.off("error", reject);
      resolve(session);
    });
    session.once("error", reject);
  });
}

/** A gRPC message: the 5-byte prefix (uncompressed) and the protobuf bytes. */
export function grpcFrame(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

export interface CallHandlers {
  /** One whole message, with the time its last chunk arrived. */
  onMessage(payload: Buffer, at: number): void;
  /** The call ended: `status` is grpc-status (undefined if the stream broke without one). */
  onEnd?(status: number | undefined, error?: Error): void;
}

/** Starts a call with one request message; the messages come to `handlers`. */
export function startCall(
  session: http2.ClientHttp2Session,
  path: string,
  request: Uint8Array,
  handlers: CallHandlers,
): http2.ClientHttp2Stream {
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  let pending: Buffer = Buffer.alloc(0);
  let status: number | undefined;
  stream.on("response", (headers) => {
    // A trailers-only answer puts grpc-status in the headers.
    const s = headers["grpc-status"];
    if (s !== undefined) status = Number(s);
  });
  stream.on("trailers", (trailers) => {
    const s = trailers["grpc-status"];
    if (s !== undefined) status = Number(s);
  });
  stream.on("data", (chunk: Buffer) => {
    const at = nowMs();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      const payload = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      handlers.onMessage(payload, at);
    }
  });
  let ended = false;
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    handlers.onEnd?.(status, error);
  };
  stream.on("error", (err: Error) => end(err));
  stream.on("close", () => end());
  stream.end(grpcFrame(request));
  return stream;
}

/** A unary call: resolves with the one response message, rejects on a non-OK status. */
export function unaryCall(
  session: http2.ClientHttp2Session,
  path: string,
  request: Uint8Array,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    startCall(session, path, request, {
      onMessage(payload) {
        response = Buffer.from(payload);
      },
      onEnd(status, error) {
        if (status === 0 && response) resolve(response);
        else reject(error ?? new Error(`${path} ended with grpc-status ${status}`));
      },
    });
  });
}
