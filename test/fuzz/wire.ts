/**
 * Hand-built bytes for the fuzz test: protobuf fields, gRPC length-prefixed
 * frames and raw HTTP/2 frames, so that requests can be wrong in exactly the
 * way a case wants (a generated client would refuse to build them).
 */

// ---- protobuf ----

export const WIRE = { varint: 0, i64: 1, len: 2, sgroup: 3, egroup: 4, i32: 5 } as const;

export function varint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export function tag(field: number, wireType: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

export function lenField(field: number, payload: Buffer | string): Buffer {
  const bytes = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  return Buffer.concat([tag(field, WIRE.len), varint(bytes.length), bytes]);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tag(field, WIRE.varint), varint(value)]);
}

/** `depth` nested start-group tags of an unknown field, closed again if `closed`. */
export function nestedGroups(field: number, depth: number, closed: boolean): Buffer {
  const open = tag(field, WIRE.sgroup);
  const close = tag(field, WIRE.egroup);
  const parts: Buffer[] = [];
  for (let i = 0; i < depth; i++) parts.push(open);
  if (closed) for (let i = 0; i < depth; i++) parts.push(close);
  return Buffer.concat(parts);
}

// ---- gRPC length-prefixed messages ----

/** Flags byte, then a 4-byte big-endian length (`declaredLength`, default the real one), then the body. */
export function grpcFrame(body: Buffer, flags = 0, declaredLength = body.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([head, body]);
}

/** The frames of a gRPC-Web body: data messages and the trailer frame (flag 0x80). */
export interface GrpcWebBody {
  messages: Buffer[];
  trailers?: Record<string, string>;
  /** Set when the body does not split into whole frames. */
  malformed?: string;
}

export function parseGrpcWebBody(body: Buffer): GrpcWebBody {
  const messages: Buffer[] = [];
  let trailers: Record<string, string> | undefined;
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5) return { messages, malformed: "partial frame header" };
    const flags = body[at] as number;
    const len = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < len) return { messages, malformed: "partial frame" };
    const payload = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (flags & 0x80) {
      trailers = {};
      for (const line of payload.toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0)
          trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    } else messages.push(payload);
  }
  return trailers ? { messages, trailers } : { messages };
}

// ---- HTTP/2 ----

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const H2 = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8 } as const;

/** One frame; `declaredLength` overrides the 24-bit length field. */
export function h2Frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer,
  declaredLength = payload.length,
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(declaredLength & 0xffffff, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/** A HEADERS block in HPACK "literal without indexing, new name" form (no Huffman). */
export function hpackLiteral(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string) => {
    const b = Buffer.from(s, "latin1");
    return Buffer.concat([hpackInt(b.length, 7, 0), b]);
  };
  for (const [name, value] of headers) parts.push(Buffer.from([0x00]), str(name), str(value));
  return Buffer.concat(parts);
}

function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

export interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits server bytes into frames; a trailing partial frame is returned as `rest`. */
export function parseH2Frames(bytes: Buffer): { frames: ParsedFrame[]; rest: Buffer } {
  const frames: ParsedFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 9) {
    const len = bytes.readUIntBE(at, 3);
    if (bytes.length - at - 9 < len) break;
    frames.push({
      type: bytes[at + 3] as number,
      flags: bytes[at + 4] as number,
      streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      payload: bytes.subarray(at + 9, at + 9 + len),
    });
    at += 9 + len;
  }
  return { frames, rest: bytes.subarray(at) };
}
