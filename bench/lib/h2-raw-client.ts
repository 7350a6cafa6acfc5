/**
 * A bare gRPC-over-h2c load client: HTTP/2 frames written and read by hand
 * on a TCP socket. Node's http2 client costs about what the broker's server
 * side does per call, so on one core it cannot load the broker (measured:
 * ~1,500 req/s where h2load gets ~8,000); h2load is fast but sends one fixed
 * body. This one varies the body per call at h2load's kind of cost: each
 * request is a precomputed HEADERS block (HPACK, static table and literals,
 * never the dynamic table) plus one DATA frame, many written at once.
 *
 * It never decodes the server's HPACK (it keeps no decoder state, which is
 * fine since nothing it sends depends on it): a call succeeded when a gRPC
 * message arrived before the stream ended, since the broker's errors are
 * trailers-only. Flow control: it opens its receive windows wide at the
 * start and tops the connection's up, and respects the server's connection
 * window for what it sends.
 */
import { connect, type Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const MAX_WINDOW = 2 ** 31 - 1;
const INITIAL_WINDOW = 65_535;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(stream, 5);
  payload.copy(out, 9);
  return out;
}

/** An HPACK string literal, no Huffman (length < 127). */
function literal(s: string): Buffer {
  if (s.length >= 127) throw new Error("header too long for this encoder");
  return Buffer.concat([Buffer.from([s.length]), Buffer.from(s, "latin1")]);
}

/** POST `path` with gRPC's headers, from HPACK's static table (RFC 7541 appendix A) and literals. */
function headerBlock(authority: string, path: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST (3), :scheme http (6)
    Buffer.from([0x04]), // :path, literal without indexing, name index 4
    literal(path),
    Buffer.from([0x01]), // :authority (1)
    literal(authority),
    Buffer.from([0x0f, 0x10]), // content-type (31 = 15 + 16)
    literal("application/grpc"),
    Buffer.from([0x00]), // te: a new name
    literal("te"),
    literal("trailers"),
  ]);
}

/** What the client asks for next: a gRPC-framed request, and optionally a look at the response message. */
export interface NextCall {
  readonly body: Buffer;
  readonly check?: (message: Buffer) => void;
}

interface Stream {
  readonly started: number;
  readonly check: ((message: Buffer) => void) | undefined;
  data: Buffer[];
  gotData: boolean;
}

export interface RawLoadResult {
  readonly latenciesMs: number[];
  readonly failed: number;
}

/**
 * One connection keeping `streams` calls in flight, each taking its request
 * from `next` until it returns undefined; resolves when the last call ended.
 * Calls started before `measureFrom` (performance.now ms) are not counted.
 */
export function runConnection(
  port: number,
  path: string,
  streams: number,
  next: () => NextCall | undefined,
  measureFrom: number,
): Promise<RawLoadResult> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    const headers = headerBlock(`127.0.0.1:${port}`, path);
    const open = new Map<number, Stream>();
    const latenciesMs: number[] = [];
    let failed = 0;
    let nextId = 1;
    let sendWindow = INITIAL_WINDOW;
    let received = 0;
    let done = false;
    let pending: Buffer = Buffer.alloc(0);
    const out: Buffer[] = [];

    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve({ latenciesMs, failed });
    };

    /** A call taken from `next` that waits for the server's connection window. */
    let held: NextCall | undefined;
    let exhausted = false;

    /** Starts calls up to `streams` in flight while the server's window allows. */
    const fill = () => {
      while (open.size < streams && !exhausted) {
        const call = held ?? next();
        held = undefined;
        if (!call) {
          exhausted = true;
          break;
        }
        if (call.body.length > sendWindow) {
          held = call; // a WINDOW_UPDATE brings it back here
          break;
        }
        const id = nextId;
        nextId += 2;
        sendWindow -= call.body.length;
        out.push(frame(HEADERS, END_HEADERS, id, headers), frame(DATA, END_STREAM, id, call.body));
        open.set(id, { started: performance.now(), check: call.check, data: [], gotData: false });
      }
      if (out.length > 0) socket.write(Buffer.concat(out.splice(0)));
      if (open.size === 0 && exhausted) finish();
    };

    const end = (id: number, ok: boolean) => {
      const s = open.get(id);
      if (!s) return;
      open.delete(id);
      const counted = s.started >= measureFrom;
      if (!ok || !s.gotData) {
        if (counted) failed++;
        return;
      }
      if (s.check) s.check(Buffer.concat(s.data).subarray(5));
      if (counted) latenciesMs.push(performance.now() - s.started);
    };

    const onFrame = (type: number, flags: number, id: number, payload: Buffer) => {
      if (type === DATA) {
        received += payload.length;
        const s = open.get(id);
        if (s && payload.length > 0) {
          s.gotData = true;
          if (s.check) s.data.push(Buffer.from(payload));
        }
        if (flags & END_STREAM) end(id, true);
      } else if (type === HEADERS) {
        if (flags & END_STREAM) end(id, true);
      } else if (type === RST_STREAM) {
        end(id, false);
      } else if (type === SETTINGS && !(flags & ACK)) {
        out.push(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
      } else if (type === PING && !(flags & ACK)) {
        out.push(frame(PING, ACK, 0, payload));
      } else if (type === WINDOW_UPDATE && id === 0) {
        sendWindow += payload.readUInt32BE(0) & MAX_WINDOW;
      } else if (type === GOAWAY) {
        finish(new Error(`GOAWAY, error code ${payload.readUInt32BE(4)}`));
      }
    };

    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 9) {
        const length = pending.readUIntBE(at, 3);
        if (pending.length - at < 9 + length) break;
        const type = pending[at + 3] ?? 0;
        const flags = pending[at + 4] ?? 0;
        const id = pending.readUInt32BE(at + 5) & MAX_WINDOW;
        onFrame(type, flags, id, pending.subarray(at + 9, at + 9 + length));
        at += 9 + length;
      }
      pending = pending.subarray(at);
      if (done) return;
      // Keep the connection's receive window open (the streams' is opened wide by SETTINGS).
      if (received > 2 ** 30) {
        const inc = Buffer.alloc(4);
        inc.writeUInt32BE(received);
        out.push(frame(WINDOW_UPDATE, 0, 0, inc));
        received = 0;
      }
      fill();
    });
    socket.once("error", (err) => finish(err));
    socket.once("close", () => finish(open.size > 0 ? new Error("connection closed") : undefined));
    socket.once("connect", () => {
      const settings = Buffer.alloc(12);
      settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH
      settings.writeUInt32BE(0, 2);
      settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
      settings.writeUInt32BE(MAX_WINDOW, 8);
      const inc = Buffer.alloc(4);
      inc.writeUInt32BE(MAX_WINDOW - INITIAL_WINDOW);
      out.push(PREFACE, frame(SETTINGS, 0, 0, settings), frame(WINDOW_UPDATE, 0, 0, inc));
      fill();
    });
  });
}
