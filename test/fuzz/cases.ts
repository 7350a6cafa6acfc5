/**
 * The hostile inputs of the fuzz test, by category, and what counts as a
 * proper answer to each. Every case is generated from its own seed (printed
 * with any failure) and runs on its own connection or HTTP/2 stream with its
 * own timeout, so one case never waits on another.
 *
 * What a proper answer is:
 * - gRPC (both ports): HTTP 200 with a `grpc-status` of 0-16, in the trailers
 *   or trailers-only headers; where a case knows the code, that code. A
 *   request that is not gRPC at the HTTP level may get 404/405/415 instead
 *   (the Connect port routes and checks content types before the protocol).
 * - Connect (HTTP/1.1 and h2): 4xx/5xx with a JSON body `{code, message}`
 *   whose code is one of Connect's, or 404/405/415 with any body; 200 only for
 *   inputs that are in fact valid (unknown JSON fields, an odd but valid
 *   header).
 * - gRPC-Web and Connect streaming: HTTP 200 with a well-formed body whose
 *   trailer (gRPC-Web) or end-stream (Connect) frame carries the status, or
 *   404/405/415.
 * - Raw HTTP/1.1: a complete response with a 4xx status, then (for errors the
 *   parser raises) the connection closed.
 *
 * What legitimately ends without a status:
 * - Bytes that are not HTTP/2 sent to the gRPC port (or garbage before the
 *   preface): the server closes the connection, after SETTINGS and GOAWAY.
 * - Bytes that are neither HTTP/1.1 nor HTTP/2 on the Connect port: Node's
 *   parser answers 400 (or nothing) and closes.
 * - Garbage after the HTTP/2 preface: a connection error, answered with
 *   GOAWAY; the client then closes. (For errors nghttp2 detects itself the
 *   server never closes nor releases that socket: the `it.fails` cases in
 *   hostile-input.test.ts.) Frames the protocol says to ignore are ignored,
 *   and a PING sent after them is ACKed.
 * - A stream the client resets mid-message (RST_STREAM): nobody is left to
 *   answer; the session must stay usable.
 * - Malformed pseudo-headers or oversized header blocks: RST_STREAM (a stream
 *   error, RFC 9113 §8.1.1), or HTTP 431.
 * - CONNECT on HTTP/1.1: Node closes the socket (no `connect` listener).
 * - Slowloris: partial requests the client stops sending; the server waits
 *   (or closes), the client closes after ~1 s.
 */
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { FUZZ_APP } from "./child-protocol.js";
import { Prng } from "./prng.js";
import {
  type H1Result,
  type H2Pool,
  type H2Result,
  h1Call,
  h2Call,
  type RawResult,
  rawExchange,
} from "./transport.js";
import {
  FLAG,
  grpcFrame,
  H2,
  H2_PREFACE,
  h2Frame,
  hpackLiteral,
  lenField,
  nestedGroups,
  parseGrpcWebBody,
  parseH2Frames,
  tag,
  varint,
  varintField,
  WIRE,
} from "./wire.js";

export type Port = "grpc" | "connect";

export interface FuzzContext {
  readonly ports: Record<Port, number>;
  readonly pools: Record<Port, H2Pool>;
  /** No keep-alive: a hostile request never poisons the next one's socket. */
  readonly agent: http.Agent;
  /** Per request; reaching it is a hang, and a failure. */
  readonly timeoutMs: number;
}

export interface Verdict {
  ok: boolean;
  /** What happened, for the tally: "grpc-status 3", "http 415", "GOAWAY 6"... */
  label: string;
  detail?: string;
}

export interface FuzzCase {
  readonly category: Category;
  readonly port: Port;
  readonly seed: number;
  /** Enough to understand (and, with the seed, rebuild) the input. */
  readonly input: string;
  run(ctx: FuzzContext): Promise<Verdict>;
}

export const CATEGORIES = [
  "tcp-random-bytes",
  "h2-garbage-after-preface",
  "h2-random-frames",
  "grpc-random-message",
  "grpc-truncated-frame",
  "grpc-reset-mid-message",
  "grpc-compressed-no-encoding",
  "grpc-oversized",
  "protobuf-hostile",
  "grpc-absurd-deadline",
  "grpc-hostile-headers",
  "connect-json-hostile",
  "http-method-path",
  "http1-bogus-headers",
  "slowloris",
  "grpc-web-framing",
  "connect-stream-framing",
] as const;
export type Category = (typeof CATEGORIES)[number];

// ---- paths ----

const TOKEN = "/tokenbroker.v1.TokenService";
const GET_TOKEN = `${TOKEN}/GetToken`;
const INVALIDATE = `${TOKEN}/InvalidateToken`;
const WATCH = `${TOKEN}/WatchToken`;
const RPC_PATHS = [
  GET_TOKEN,
  INVALIDATE,
  WATCH,
  "/tokenbroker.v1.AdminService/GetStatus",
  "/tokenbroker.v1.AdminService/ForceRefresh",
  "/tokenbroker.v1.AdminService/ClearQuota",
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Watch",
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
] as const;
const STREAMING_PATHS = new Set<string>([
  WATCH,
  "/grpc.health.v1.Health/Watch",
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]);

const CONNECT_CODES = new Set([
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
]);

/** A valid GetTokenRequest for the configured app. */
function validTokenRequest(kind = 1): Buffer {
  return Buffer.concat([lenField(1, FUZZ_APP.id), varintField(2, kind)]);
}

function grpcHeaders(
  path: string,
  extra: http2.OutgoingHttpHeaders = {},
): http2.OutgoingHttpHeaders {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...extra,
  };
}

const hex = (b: Buffer, max = 48) =>
  b.length <= max ? b.toString("hex") : `${b.subarray(0, max).toString("hex")}…(${b.length} bytes)`;

// ---- verdicts ----

interface GrpcExpectation {
  /** The only acceptable codes; default any valid one. */
  codes?: readonly number[];
  /** Any code but OK. */
  nonOk?: boolean;
  /** HTTP statuses acceptable instead of a gRPC status (e.g. 404/405/415). */
  httpStatuses?: readonly number[];
  /** RST_STREAM without a status is acceptable (stream errors). */
  resetOk?: boolean;
}

function grpcStatusOf(r: H2Result): string | undefined {
  const v = r.trailers?.["grpc-status"] ?? r.headers?.["grpc-status"];
  return Array.isArray(v) ? v[0] : v;
}

function grpcVerdict(r: H2Result, e: GrpcExpectation = {}): Verdict {
  if (r.timedOut) return { ok: false, label: "hang", detail: "no status before the timeout" };
  if (r.canceledAfterMessage) return { ok: true, label: "stream message (client canceled)" };
  const httpStatus = Number(r.headers?.[":status"]);
  const status = grpcStatusOf(r);
  if (r.headers && httpStatus !== 200) {
    if (e.httpStatuses?.includes(httpStatus)) return { ok: true, label: `http ${httpStatus}` };
    return {
      ok: false,
      label: `http ${httpStatus}`,
      detail: `unexpected HTTP status ${httpStatus}`,
    };
  }
  if (status === undefined) {
    // REFUSED_STREAM before any headers: the server did not process the request
    // (e.g. it raced the server's idle-connection GOAWAY); clients retry it as
    // UNAVAILABLE (RFC 9113 §8.7, gRPC's HTTP/2 mapping).
    if (r.rstCode === 7 && !r.headers)
      return { ok: true, label: "RST_STREAM 7 (refused, retryable)" };
    if (e.resetOk && r.rstCode) return { ok: true, label: `RST_STREAM ${r.rstCode}` };
    if (e.resetOk && r.error) return { ok: true, label: `stream error (${r.error})` };
    return {
      ok: false,
      label: r.rstCode ? `RST_STREAM ${r.rstCode}` : "no grpc-status",
      detail: `no grpc-status; headers=${JSON.stringify(r.headers)} rst=${r.rstCode} error=${r.error}`,
    };
  }
  const code = Number(status);
  const label = `grpc-status ${status}${r.leftOpen ? " (request side left open)" : ""}`;
  if (!/^\d{1,2}$/.test(status) || code > 16)
    return { ok: false, label, detail: `invalid grpc-status ${status}` };
  if (e.codes && !e.codes.includes(code))
    return { ok: false, label, detail: `expected one of ${e.codes.join(",")}: ${message(r)}` };
  if (e.nonOk && code === 0) return { ok: false, label, detail: "hostile input answered OK" };
  return { ok: true, label };
}

function message(r: H2Result): string {
  const m = r.trailers?.["grpc-message"] ?? r.headers?.["grpc-message"];
  return decodeURIComponent(String(m ?? ""));
}

interface HttpExpectation {
  /** Statuses acceptable with any body (404/405/415 by default). */
  bare?: readonly number[];
  /** A 2xx with a JSON body is acceptable (the input is in fact valid). */
  allow200?: boolean;
  /** Exactly this status. */
  status?: number;
  /** The server may answer and reset before the whole body was sent. */
  resetOk?: boolean;
}

interface HttpAnswer {
  status?: number;
  contentType?: string;
  body: Buffer;
  timedOut?: boolean;
  error?: string;
}

function fromH1(r: H1Result): HttpAnswer {
  const ct = r.headers?.["content-type"];
  return { status: r.status, contentType: ct, body: r.body, timedOut: r.timedOut, error: r.error };
}

function fromH2(r: H2Result): HttpAnswer {
  const status = r.headers?.[":status"];
  const ct = r.headers?.["content-type"];
  return {
    status: status === undefined ? undefined : Number(status),
    contentType: Array.isArray(ct) ? ct[0] : ct,
    body: r.body,
    timedOut: r.timedOut,
    error: r.error ?? (r.rstCode ? `RST_STREAM ${r.rstCode}` : undefined),
  };
}

/**
 * REFUSED_STREAM before any response: the server did not process the request
 * (it raced the idle-connection teardown); HTTP/2 clients retry it (RFC 9113 §8.7).
 */
function refusedUnprocessed(a: HttpAnswer): Verdict | undefined {
  return a.status === undefined && a.error?.includes("NGHTTP2_REFUSED_STREAM")
    ? { ok: true, label: "RST_STREAM 7 (refused, retryable)" }
    : undefined;
}

/** Connect unary: a JSON error with a known code, or a bare 404/405/415. */
function connectVerdict(a: HttpAnswer, e: HttpExpectation = {}): Verdict {
  if (a.timedOut) return { ok: false, label: "hang", detail: "no response before the timeout" };
  const refused = refusedUnprocessed(a);
  if (refused) return refused;
  if (a.status === undefined) {
    if (e.resetOk) return { ok: true, label: "reset after answer" };
    return { ok: false, label: "no response", detail: a.error ?? "closed without a response" };
  }
  const label = `http ${a.status}`;
  if (e.status !== undefined && a.status !== e.status)
    return {
      ok: false,
      label,
      detail: `expected HTTP ${e.status}: ${a.body.toString().slice(0, 200)}`,
    };
  if ((e.bare ?? [404, 405, 415]).includes(a.status)) return { ok: true, label };
  if (a.status >= 200 && a.status < 300) {
    if (!e.allow200)
      return {
        ok: false,
        label,
        detail: `hostile input accepted: ${a.body.toString().slice(0, 200)}`,
      };
    try {
      JSON.parse(a.body.toString());
      return { ok: true, label };
    } catch {
      return { ok: false, label, detail: "2xx without a JSON body" };
    }
  }
  if (a.status < 400) return { ok: false, label, detail: "neither success nor error" };
  if (!a.contentType?.startsWith("application/json"))
    return {
      ok: false,
      label,
      detail: `error without a JSON body (content-type ${a.contentType})`,
    };
  try {
    const body = JSON.parse(a.body.toString()) as { code?: unknown; message?: unknown };
    if (typeof body.code !== "string" || !CONNECT_CODES.has(body.code))
      return {
        ok: false,
        label,
        detail: `unknown error code in ${a.body.toString().slice(0, 200)}`,
      };
    return { ok: true, label: `${label} ${body.code}` };
  } catch {
    return {
      ok: false,
      label,
      detail: `error body is not JSON: ${a.body.toString().slice(0, 200)}`,
    };
  }
}

/** gRPC-Web: 200 with the status in trailers-only headers or the body's trailer frame. */
function grpcWebVerdict(a: HttpAnswer, headerStatus: string | undefined, nonOk: boolean): Verdict {
  if (a.timedOut) return { ok: false, label: "hang", detail: "no response before the timeout" };
  const refused = refusedUnprocessed(a);
  if (refused) return refused;
  if (a.status === undefined)
    return { ok: false, label: "no response", detail: a.error ?? "closed without a response" };
  if ([404, 405, 415].includes(a.status)) return { ok: true, label: `http ${a.status}` };
  if (a.status !== 200)
    return { ok: false, label: `http ${a.status}`, detail: "unexpected HTTP status" };
  let status = headerStatus;
  if (status === undefined) {
    const parsed = parseGrpcWebBody(a.body);
    if (parsed.malformed) return { ok: false, label: "malformed body", detail: parsed.malformed };
    status = parsed.trailers?.["grpc-status"];
  }
  if (status === undefined) return { ok: false, label: "no grpc-status", detail: hex(a.body) };
  const code = Number(status);
  if (!/^\d{1,2}$/.test(status) || code > 16)
    return { ok: false, label: `grpc-status ${status}`, detail: "invalid grpc-status" };
  if (nonOk && code === 0)
    return { ok: false, label: "grpc-status 0", detail: "hostile input answered OK" };
  return { ok: true, label: `grpc-status ${status}` };
}

/** Connect streaming: 200 whose last envelope is end-stream (flag 0x02) with JSON. */
function connectStreamVerdict(a: HttpAnswer): Verdict {
  if (a.timedOut) return { ok: false, label: "hang", detail: "no response before the timeout" };
  const refused = refusedUnprocessed(a);
  if (refused) return refused;
  if (a.status === undefined)
    return { ok: false, label: "no response", detail: a.error ?? "closed without a response" };
  if (a.status !== 200) return connectVerdict(a);
  let at = 0;
  let end: Buffer | undefined;
  while (at + 5 <= a.body.length) {
    const flags = a.body[at] as number;
    const len = a.body.readUInt32BE(at + 1);
    if (at + 5 + len > a.body.length) break;
    if (flags & 0x02) end = a.body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
  }
  if (at !== a.body.length || !end)
    return { ok: false, label: "malformed stream", detail: hex(a.body) };
  try {
    const parsed = JSON.parse(end.toString()) as { error?: { code?: string } };
    const code = parsed.error?.code;
    if (code === undefined)
      return { ok: false, label: "end-stream OK", detail: "hostile stream answered OK" };
    if (!CONNECT_CODES.has(code))
      return { ok: false, label: `end-stream ${code}`, detail: "unknown code" };
    return { ok: true, label: `end-stream ${code}` };
  } catch {
    return { ok: false, label: "malformed end-stream", detail: hex(end) };
  }
}

// ---- raw HTTP/1.1 responses ----

interface H1Response {
  status: number;
  complete: boolean;
}

/** Splits raw server bytes into HTTP/1.1 responses (content-length, chunked, or until close). */
function parseH1Responses(
  buf: Buffer,
  closed: boolean,
): { responses: H1Response[]; invalid?: string } {
  const responses: H1Response[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf("\r\n\r\n", at, "latin1");
    if (end < 0) return { responses };
    const head = buf.subarray(at, end).toString("latin1").split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
    if (!m) return { responses, invalid: `not a status line: ${JSON.stringify(head[0])}` };
    const status = Number(m[1]);
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0)
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    let bodyAt = end + 4;
    if (status < 200 || status === 204 || status === 304) {
      responses.push({ status, complete: true });
      at = bodyAt;
      continue;
    }
    const length = headers.get("content-length");
    if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
      let done = false;
      while (!done) {
        const lineEnd = buf.indexOf("\r\n", bodyAt, "latin1");
        if (lineEnd < 0) return { responses: [...responses, { status, complete: false }] };
        const size = Number.parseInt(buf.subarray(bodyAt, lineEnd).toString("latin1"), 16);
        if (Number.isNaN(size)) return { responses, invalid: "bad chunk size" };
        if (size === 0) {
          // Trailers, then an empty line.
          const trailersEnd =
            buf.subarray(lineEnd, lineEnd + 4).toString("latin1") === "\r\n\r\n"
              ? lineEnd
              : buf.indexOf("\r\n\r\n", lineEnd, "latin1");
          if (trailersEnd < 0) return { responses: [...responses, { status, complete: false }] };
          bodyAt = trailersEnd + 4;
          done = true;
        } else {
          if (lineEnd + 2 + size + 2 > buf.length)
            return { responses: [...responses, { status, complete: false }] };
          bodyAt = lineEnd + 2 + size + 2;
        }
      }
      responses.push({ status, complete: true });
      at = bodyAt;
    } else if (length !== undefined) {
      const n = Number(length);
      if (bodyAt + n > buf.length)
        return { responses: [...responses, { status, complete: false }] };
      responses.push({ status, complete: true });
      at = bodyAt + n;
    } else {
      responses.push({ status, complete: closed });
      return { responses };
    }
  }
  return { responses };
}

function finalResponses(buf: Buffer, closed: boolean): H1Response[] {
  return parseH1Responses(buf, closed).responses.filter((r) => r.status >= 200 && r.complete);
}

interface RawH1Expectation {
  /** Acceptable final statuses; default any 4xx (and `also`). */
  statuses?: readonly number[];
  also?: readonly number[];
  /** Closing without any response is acceptable. */
  closeOk?: boolean;
  /** Responses to wait for (pipelining). */
  responses?: number;
}

function rawH1Verdict(r: RawResult, e: RawH1Expectation): Verdict {
  const closed = r.outcome === "server";
  const parsed = parseH1Responses(r.received, closed);
  if (parsed.invalid) return { ok: false, label: "garbled response", detail: parsed.invalid };
  const finals = finalResponses(r.received, closed);
  const first = finals[0];
  if (!first) {
    if (r.outcome === "timeout") return { ok: false, label: "hang", detail: hex(r.received) };
    if (e.closeOk) return { ok: true, label: `closed${r.error ? ` (${r.error})` : ""}` };
    return { ok: false, label: "closed without a response", detail: r.error ?? "" };
  }
  const statuses = finals.map((f) => f.status);
  const label = `http ${statuses.join("+")}`;
  const acceptable = (s: number) =>
    e.statuses ? e.statuses.includes(s) : (s >= 400 && s < 500) || !!e.also?.includes(s);
  if (!acceptable(first.status))
    return { ok: false, label, detail: `unexpected status ${first.status}` };
  return { ok: true, label };
}

const h1Until = (n: number) => (buf: Buffer) => finalResponses(buf, false).length >= n;

// ---- raw HTTP/2 ----

const PING_OPAQUE = Buffer.from("fuzzPING", "latin1");
const PING = h2Frame(H2.PING, 0, 0, PING_OPAQUE);
const EMPTY_SETTINGS = h2Frame(H2.SETTINGS, 0, 0, Buffer.alloc(0));

/** Done once the server GOAWAYs or ACKs our PING (it has read everything before it). */
function h2Until(buf: Buffer): boolean {
  return parseH2Frames(buf).frames.some(
    (f) =>
      f.type === H2.GOAWAY ||
      (f.type === H2.PING && f.flags & FLAG.ACK && f.payload.equals(PING_OPAQUE)),
  );
}

const H2_ERRORS = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** The server's bytes must be HTTP/2 frames starting with SETTINGS; GOAWAY codes must be known. */
function rawH2Verdict(r: RawResult, mayStall: boolean): Verdict {
  const { frames } = parseH2Frames(r.received);
  if (r.received.length > 0 && frames[0]?.type !== H2.SETTINGS)
    return { ok: false, label: "not HTTP/2", detail: hex(r.received) };
  const goaway = frames.find((f) => f.type === H2.GOAWAY);
  if (goaway) {
    const code = goaway.payload.length >= 8 ? goaway.payload.readUInt32BE(4) : -1;
    const name = H2_ERRORS[code];
    if (!name) return { ok: false, label: `GOAWAY ${code}`, detail: "unknown error code" };
    return { ok: true, label: `GOAWAY ${name}` };
  }
  if (r.outcome === "done") return { ok: true, label: "PING ACK (frames ignored or stream-level)" };
  if (r.outcome === "server") return { ok: true, label: "closed" };
  if (mayStall) return { ok: true, label: "waits for the rest of a frame (client closed)" };
  return {
    ok: false,
    label: "hang",
    detail: `neither GOAWAY nor PING ACK; got ${hex(r.received)}`,
  };
}

// ---- generators ----

type Gen = (
  rng: Prng,
  port: Port,
) => { input: string; run: (ctx: FuzzContext) => Promise<Verdict> };

function grpcCase(
  port: Port,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer[],
  expect: GrpcExpectation,
  extra: { resetAfterBody?: boolean } = {},
) {
  return (ctx: FuzzContext) =>
    h2Call(ctx.pools[port].get(), {
      headers: { ...grpcHeaders(path), ...headers },
      body,
      timeoutMs: ctx.timeoutMs,
      cancelAfterFirstMessage: STREAMING_PATHS.has(path),
      ...extra,
    }).then((r) => {
      if (extra.resetAfterBody) {
        // The client reset the stream: no status is expected, only that the
        // server does not answer garbage and the session survives.
        if (r.timedOut) return { ok: false, label: "hang", detail: "reset stream never closed" };
        const status = grpcStatusOf(r);
        return {
          ok: true,
          label: status === undefined ? "client reset" : `grpc-status ${status} before reset`,
        };
      }
      return grpcVerdict(r, expect);
    });
}

const tcpRandomBytes: Gen = (rng, port) => {
  // At least 24 bytes, so that the gRPC port sees a whole (wrong) preface.
  const bytes = rng.bytes(rng.range(24, 4096));
  if (bytes.subarray(0, 3).toString("latin1") === "PRI") bytes[0] = 0;
  return {
    input: `raw ${hex(bytes)}`,
    run: async (ctx) => {
      const r = await rawExchange(ctx.ports[port], { chunks: [bytes], timeoutMs: ctx.timeoutMs });
      if (r.outcome === "timeout")
        return { ok: false, label: "hang", detail: `connection left open; got ${hex(r.received)}` };
      if (port === "grpc") {
        const v = rawH2Verdict(r, false);
        return v.ok ? { ok: true, label: `closed, ${v.label}` } : v;
      }
      if (r.received.length === 0) return { ok: true, label: "closed" };
      const text = r.received.toString("latin1");
      if (!text.startsWith("HTTP/1.1 400 "))
        return { ok: false, label: "unexpected answer", detail: text.slice(0, 200) };
      return { ok: true, label: "closed, http 400" };
    },
  };
};

const h2GarbageAfterPreface: Gen = (rng, port) => {
  const withSettings = rng.chance(0.7);
  const garbage = rng.bytes(rng.range(1, 512));
  const tail = Buffer.concat([garbage, PING]);
  // Whether our bytes split into whole frames: if not, the server may
  // legitimately wait for the rest of a frame we announced.
  const mayStall = parseH2Frames(tail).rest.length > 0;
  const chunks = [H2_PREFACE, ...(withSettings ? [EMPTY_SETTINGS] : []), tail];
  return {
    input: `preface${withSettings ? "+SETTINGS" : ""}+${hex(garbage)}+PING`,
    run: async (ctx) =>
      rawH2Verdict(
        await rawExchange(ctx.ports[port], {
          chunks,
          until: h2Until,
          timeoutMs: mayStall ? 1000 : ctx.timeoutMs,
        }),
        mayStall,
      ),
  };
};

function randomH2Frame(rng: Prng): Buffer {
  const type = rng.chance(0.9) ? rng.int(10) : rng.range(10, 255);
  const flags = rng.chance(0.5) ? rng.int(256) : rng.pick([0, 1, 4, 5, 8, 0x20]);
  const streamId = rng.chance(0.1)
    ? rng.u32()
    : rng.pick([0, 1, 1, 3, 5, 2, 0x7fffffff, rng.range(1, 1000)]);
  const lengthSkew = rng.chance(0.2) ? rng.pick([-1, 1, 2]) : 0;
  let payload: Buffer;
  switch (type) {
    case H2.HEADERS:
    case H2.CONTINUATION:
      payload = rng.chance(0.5)
        ? hpackLiteral([
            [":method", rng.pick(["POST", "GET", "PRI", ""])],
            [":scheme", "http"],
            [":path", rng.pick([...RPC_PATHS, "", "*", "/x"])],
            [":authority", "fuzz"],
            ["content-type", "application/grpc"],
            ...(rng.chance(0.3) ? [[":status", "200"] as const] : []),
            ...(rng.chance(0.3) ? [["connection", "keep-alive"] as const] : []),
          ])
        : rng.bytes(rng.range(0, 64));
      break;
    case H2.PRIORITY:
      payload = rng.bytes(5 + lengthSkew);
      break;
    case H2.RST_STREAM:
    case H2.WINDOW_UPDATE:
      payload = rng.chance(0.3) ? Buffer.alloc(4 + lengthSkew) : rng.bytes(4 + lengthSkew);
      break;
    case H2.SETTINGS: {
      const parts: Buffer[] = [];
      for (let i = rng.int(4); i > 0; i--) {
        const s = Buffer.alloc(6);
        s.writeUInt16BE(rng.chance(0.8) ? rng.range(1, 8) : rng.int(65536), 0);
        s.writeUInt32BE(
          rng.chance(0.5) ? rng.u32() : rng.pick([0, 1, 16383, 16777216, 0x7fffffff]),
          2,
        );
        parts.push(s);
      }
      payload = Buffer.concat([...parts, rng.bytes(Math.max(lengthSkew, 0))]);
      break;
    }
    case H2.PING:
      payload = rng.bytes(8 + lengthSkew);
      break;
    case H2.GOAWAY:
      payload = rng.bytes(rng.range(6, 32));
      break;
    default:
      payload = rng.bytes(rng.range(0, 64));
  }
  return h2Frame(type, flags, streamId, payload);
}

const h2RandomFrames: Gen = (rng, port) => {
  const frames: Buffer[] = [];
  for (let i = rng.range(1, 6); i > 0; i--) frames.push(randomH2Frame(rng));
  const body = Buffer.concat(frames);
  return {
    input: `preface+SETTINGS+frames ${hex(body, 96)}+PING`,
    run: async (ctx) =>
      rawH2Verdict(
        await rawExchange(ctx.ports[port], {
          chunks: [H2_PREFACE, EMPTY_SETTINGS, body, PING],
          until: h2Until,
          timeoutMs: ctx.timeoutMs,
        }),
        false,
      ),
  };
};

const grpcRandomMessage: Gen = (rng, port) => {
  const path = rng.pick(RPC_PATHS);
  const body = rng.bytes(rng.chance(0.2) ? rng.range(513, 8192) : rng.range(1, 512));
  return {
    input: `${path} message ${hex(body)}`,
    // Random bytes can decode (unknown fields only), so any valid status.
    run: grpcCase(port, path, {}, [grpcFrame(body)], {}),
  };
};

const grpcTruncatedFrame: Gen = (rng, port) => {
  const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
  const variant = rng.int(3);
  let frame: Buffer;
  let input: string;
  if (variant === 0) {
    frame = grpcFrame(rng.bytes(10), 0, 100);
    input = "length prefix 100, body 10";
  } else if (variant === 1) {
    const actual = rng.range(0, 200);
    const declared = actual + rng.range(1, 2000);
    frame = grpcFrame(rng.bytes(actual), 0, declared);
    input = `length prefix ${declared}, body ${actual}`;
  } else {
    frame = grpcFrame(Buffer.alloc(0)).subarray(0, rng.range(1, 4));
    input = `partial prefix ${hex(frame)}`;
  }
  return { input: `${path} ${input}`, run: grpcCase(port, path, {}, [frame], { nonOk: true }) };
};

const grpcResetMidMessage: Gen = (rng, port) => {
  const path = rng.pick(RPC_PATHS);
  const declared = rng.range(20, 60000);
  const sent = rng.range(0, Math.min(declared - 1, 4096));
  const body = grpcFrame(rng.bytes(sent), 0, declared);
  return {
    input: `${path} length prefix ${declared}, ${sent} bytes, then RST_STREAM CANCEL`,
    run: grpcCase(port, path, {}, [body], {}, { resetAfterBody: true }),
  };
};

const grpcCompressedNoEncoding: Gen = (rng, port) => {
  const valid = rng.chance(0.5);
  const body = valid ? validTokenRequest() : rng.bytes(rng.range(1, 256));
  const identity = rng.chance(0.3);
  return {
    input: `GetToken flag=1 ${identity ? "grpc-encoding: identity" : "no grpc-encoding"} ${valid ? "valid request" : hex(body)}`,
    // The Connect port follows the spec (INTERNAL). grpc-js reads a flagged
    // message as uncompressed when no encoding was negotiated, so a valid
    // request there is answered OK: any status.
    run: grpcCase(
      port,
      GET_TOKEN,
      identity ? { "grpc-encoding": "identity" } : {},
      [grpcFrame(body, 1)],
      port === "connect" ? { codes: [13] } : {},
    ),
  };
};

const grpcOversized: Gen = (rng, port) => {
  const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH, "/grpc.health.v1.Health/Check"]);
  const variant = rng.int(3);
  let frame: Buffer;
  let input: string;
  if (variant === 0) {
    const n = rng.range(64 * 1024 + 1, 100_000);
    frame = grpcFrame(rng.chance(0.5) ? Buffer.alloc(n, 0x41) : rng.bytes(n));
    input = `${n}-byte message`;
  } else if (variant === 1) {
    frame = grpcFrame(rng.bytes(rng.range(0, 100)), 0, 0xffffffff);
    input = "length prefix 4 GiB - 1, small body";
  } else {
    const declared = rng.range(64 * 1024 + 1, 0xffffffff);
    frame = grpcFrame(rng.bytes(rng.range(0, 100)), 0, declared);
    input = `length prefix ${declared}, small body`;
  }
  return { input: `${path} ${input}`, run: grpcCase(port, path, {}, [frame], { codes: [8] }) };
};

function randomUnknownField(rng: Prng, minField: number): Buffer {
  const field = rng.range(minField, rng.chance(0.5) ? 1000 : 536870911);
  switch (rng.int(5)) {
    case 0:
      return varintField(field, rng.chance(0.5) ? rng.u32() : BigInt.asUintN(64, -1n));
    case 1:
      return lenField(field, rng.bytes(rng.range(0, 64)));
    case 2:
      return Buffer.concat([tag(field, WIRE.i32), rng.bytes(4)]);
    case 3:
      return Buffer.concat([tag(field, WIRE.i64), rng.bytes(8)]);
    default:
      return Buffer.concat([tag(field, WIRE.sgroup), varintField(1, 1), tag(field, WIRE.egroup)]);
  }
}

const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

const protobufHostile: Gen = (rng, port) => {
  const variant = rng.int(10);
  const kind = rng.range(1, 3);
  const rejected = () => lenField(3, `fuzz-${rng.u32().toString(16)}`);
  switch (variant) {
    case 0: {
      const bad = Buffer.concat([Buffer.from("de"), rng.pick(INVALID_UTF8), Buffer.from("mo")]);
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const msg = Buffer.concat([lenField(1, bad), varintField(2, kind)]);
      return {
        input: `${path} app_id with invalid UTF-8 ${hex(bad)}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3, 13] }),
      };
    }
    case 1: {
      const bad = rng.pick([999, 4, 10, 39, 0x7fffffff, -1, -999, rng.range(4, 1_000_000)]);
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const msg = Buffer.concat([
        lenField(1, FUZZ_APP.id),
        varintField(2, bad),
        ...(path === INVALIDATE ? [rejected()] : []),
      ]);
      return {
        input: `${path} kind = ${bad}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3] }),
      };
    }
    case 2: {
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const parts = [lenField(1, FUZZ_APP.id), varintField(2, kind)];
      if (path === INVALIDATE) parts.push(rejected());
      for (let i = rng.range(1, 8); i > 0; i--)
        parts.splice(rng.int(parts.length + 1), 0, randomUnknownField(rng, 16));
      const msg = Buffer.concat(parts);
      return {
        input: `${path} valid request with unknown fields ${hex(msg)}`,
        // Unknown fields are skipped (proto3): the request is served.
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [0] }),
      };
    }
    case 3: {
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const options: [string, Buffer][] = [
        ["empty message", Buffer.alloc(0)],
        ["kind only", varintField(2, kind)],
        ["app_id only", lenField(1, FUZZ_APP.id)],
        ["empty app_id", Buffer.concat([lenField(1, ""), varintField(2, kind)])],
        ["kind 0 (unset)", Buffer.concat([lenField(1, FUZZ_APP.id), varintField(2, 0)])],
      ];
      if (path === INVALIDATE)
        options.push([
          "no rejected_value",
          Buffer.concat([lenField(1, FUZZ_APP.id), varintField(2, kind)]),
        ]);
      const [name, msg] = rng.pick(options);
      return {
        input: `${path} missing fields: ${name}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3] }),
      };
    }
    case 4: {
      const closed = rng.chance(0.5);
      const field = rng.pick([7, 15, 16, 3000]);
      // Kept under the 64 KiB limit, which would answer first.
      const maxDepth = Math.floor(65_000 / (tag(field, WIRE.sgroup).length * (closed ? 2 : 1)));
      const depth = Math.min(
        maxDepth,
        rng.chance(0.5) ? rng.range(100, 2000) : rng.range(2000, 65_000),
      );
      const groups = nestedGroups(field, depth, closed);
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      return {
        input: `${path} ${depth} nested groups of field ${field}${closed ? "" : ", never closed"} (${groups.length} bytes)`,
        // Shallow closed groups are skipped like any unknown field, and then
        // the required fields are missing (3); deep or unclosed ones fail to
        // decode (13 on both ports; protobuf-es has a recursion limit).
        run: grpcCase(port, path, {}, [grpcFrame(groups)], { codes: [3, 13] }),
      };
    }
    case 5: {
      const options: [string, Buffer][] = [
        ["app_id as varint", Buffer.concat([varintField(1, 5), varintField(2, kind)])],
        ["kind as bytes", Buffer.concat([lenField(1, FUZZ_APP.id), lenField(2, "x")])],
        ["app_id as fixed32", Buffer.concat([tag(1, WIRE.i32), Buffer.from("demo")])],
        ["end group without start", Buffer.concat([lenField(1, FUZZ_APP.id), tag(9, WIRE.egroup)])],
        ["wire type 6", Buffer.concat([lenField(1, FUZZ_APP.id), tag(9, 6)])],
        ["wire type 7", Buffer.concat([lenField(1, FUZZ_APP.id), tag(9, 7)])],
        ["field number 0", Buffer.concat([tag(0, WIRE.varint), varint(1)])],
      ];
      const [name, msg] = rng.pick(options);
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      return {
        input: `${path} ${name}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3, 13] }),
      };
    }
    case 6: {
      const options: [string, Buffer][] = [
        [
          "11-byte varint",
          Buffer.concat([tag(2, WIRE.varint), Buffer.alloc(10, 0xff), Buffer.from([1])]),
        ],
        ["unterminated varint", Buffer.concat([tag(2, WIRE.varint), Buffer.alloc(5, 0xff)])],
        [
          "length beyond message",
          Buffer.concat([tag(1, WIRE.len), varint(1000), Buffer.from("demo")]),
        ],
        ["length 2^63", Buffer.concat([tag(1, WIRE.len), varint(2n ** 63n), Buffer.from("demo")])],
        ["truncated fixed64", Buffer.concat([tag(9, WIRE.i64), Buffer.alloc(3)])],
      ];
      const [name, msg] = rng.pick(options);
      // (Other services' messages have no field 1/2 of these types: the bad
      // varint is then an unknown field, which protobuf-es skips leniently.)
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      return {
        input: `${path} ${name}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3, 13] }),
      };
    }
    case 7: {
      const options: [string, string][] = [
        ["65 chars", "a".repeat(65)],
        ["huge", "a".repeat(rng.range(1000, 60_000))],
        ["spaces", "de mo"],
        ["NUL", "demo\u0000"],
        ["path traversal", "../../etc/passwd"],
        ["unicode", "démo😀"],
        ["leading dot", ".demo"],
        ["newline", "demo\r\nx-injected: 1"],
      ];
      const [name, appId] = rng.pick(options);
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const msg = Buffer.concat([
        lenField(1, appId),
        varintField(2, kind),
        ...(path === INVALIDATE ? [rejected()] : []),
      ]);
      return {
        input: `${path} app_id ${name}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [3] }),
      };
    }
    case 8: {
      const n = rng.range(2049, 60_000);
      const msg = Buffer.concat([
        lenField(1, FUZZ_APP.id),
        varintField(2, kind),
        lenField(3, "x".repeat(n)),
        varintField(4, rng.u32()),
      ]);
      return {
        input: `InvalidateToken rejected_value of ${n} characters`,
        run: grpcCase(port, INVALIDATE, {}, [grpcFrame(msg)], { codes: [3] }),
      };
    }
    default: {
      const appId = `nope-${rng.u32().toString(36)}`;
      const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
      const msg = Buffer.concat([
        lenField(1, appId),
        varintField(2, kind),
        ...(path === INVALIDATE ? [rejected()] : []),
      ]);
      return {
        input: `${path} unknown app ${appId}`,
        run: grpcCase(port, path, {}, [grpcFrame(msg)], { codes: [5] }),
      };
    }
  }
};

const DEADLINES = [
  "99999999H",
  "99999999M",
  "99999999S",
  "99999999m",
  "99999999u",
  "99999999n",
  "0n",
  "0S",
  "00000000H",
  "-1S",
  "garbage",
  "",
  "1",
  "H",
  "1X",
  "999999999H",
  "1.5S",
  "+1S",
  " 1S",
  "1S ",
  "0x10S",
  "1e3m",
];

const grpcAbsurdDeadline: Gen = (rng, port) => {
  const timeout = rng.chance(0.8)
    ? rng.pick(DEADLINES)
    : Array.from({ length: rng.range(1, 12) }, () =>
        String.fromCharCode(rng.range(0x21, 0x7e)),
      ).join("");
  const zero = /^0+[HMSmun]$/.test(timeout);
  return {
    input: `GetToken grpc-timeout: ${JSON.stringify(timeout)}`,
    // A zero deadline has passed: DEADLINE_EXCEEDED. Anything else is served
    // (0), refused as malformed (3 on Connect, 13 on grpc-js) or, for huge
    // values the libraries mishandle, cut short (4; see the it.fails cases).
    run: grpcCase(port, GET_TOKEN, { "grpc-timeout": timeout }, [grpcFrame(validTokenRequest())], {
      codes: zero ? [4] : [0, 3, 4, 13],
    }),
  };
};

const grpcHostileHeaders: Gen = (rng, port) => {
  const variant = rng.int(9);
  const body = [grpcFrame(validTokenRequest())];
  switch (variant) {
    case 0: {
      const ct = rng.pick([
        "text/html",
        "application/grpc-web-text",
        "application/grpc+bogus",
        "application/grpcx",
        "multipart/form-data; boundary=x",
      ]);
      return {
        input: `GetToken content-type: ${ct}`,
        run: grpcCase(port, GET_TOKEN, { "content-type": ct }, body, { httpStatuses: [415] }),
      };
    }
    case 1: {
      const path = rng.pick([
        "/tokenbroker.v1.TokenService/Nope",
        "/nope.Service/Method",
        `/${rng.bytes(8).toString("hex")}`,
        "/tokenbroker.v1.TokenService/GetToken/extra",
        "/tokenbroker.v1.TokenService",
        "/",
      ]);
      return {
        input: `unknown path ${path}`,
        // grpc-js: UNIMPLEMENTED; the Connect port: 404 before any protocol.
        run: grpcCase(port, path, {}, body, { codes: [12], httpStatuses: [404] }),
      };
    }
    case 2: {
      const method = rng.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]);
      return {
        input: `GetToken :method ${method}`,
        run: grpcCase(port, GET_TOKEN, { ":method": method }, body, { httpStatuses: [405] }),
      };
    }
    case 3: {
      const enc = rng.pick(["snappy", "gzip", "br", "deflate", "identity, gzip", "x".repeat(100)]);
      return {
        input: `GetToken grpc-encoding: ${enc}, flagged garbage`,
        run: grpcCase(
          port,
          GET_TOKEN,
          { "grpc-encoding": enc },
          [grpcFrame(rng.bytes(rng.range(1, 64)), 1)],
          {
            nonOk: true,
          },
        ),
      };
    }
    case 4: {
      const value = rng.pick(["!!!", "=", "a", "////", "%%%"]);
      return {
        input: `GetToken x-fuzz-bin: ${JSON.stringify(value)} (not base64)`,
        run: grpcCase(port, GET_TOKEN, { "x-fuzz-bin": value }, body, {}),
      };
    }
    case 5: {
      const size = rng.range(8 * 1024, 60 * 1024);
      return {
        input: `GetToken with a ${size}-byte header`,
        // Over the server's header list limit: 431 or a stream reset.
        run: grpcCase(port, GET_TOKEN, { "x-fuzz": "a".repeat(size) }, body, {
          httpStatuses: [431],
          resetOk: true,
        }),
      };
    }
    case 6: {
      const n = rng.range(100, 2000);
      const headers: http2.OutgoingHttpHeaders = {};
      for (let i = 0; i < n; i++) headers[`x-fuzz-${i}`] = "1";
      return {
        input: `GetToken with ${n} headers`,
        run: grpcCase(port, GET_TOKEN, headers, body, { httpStatuses: [431], resetOk: true }),
      };
    }
    case 7: {
      return {
        input: "GetToken without te: trailers",
        run: grpcCase(port, GET_TOKEN, { te: undefined }, body, {}),
      };
    }
    default: {
      const accept = rng.bytes(16).toString("base64");
      return {
        input: `GetToken grpc-accept-encoding / user-agent / grpc-message-type garbage`,
        run: grpcCase(
          port,
          GET_TOKEN,
          { "grpc-accept-encoding": accept, "user-agent": accept, "grpc-message-type": accept },
          body,
          { codes: [0] },
        ),
      };
    }
  }
};

const connectJsonHostile: Gen = (rng, port) => {
  let path: string = rng.pick([GET_TOKEN, INVALIDATE]);
  const variant = rng.int(9);
  let contentType = "application/json";
  let body: Buffer;
  let expect: HttpExpectation = {};
  let headers: Record<string, string> = {};
  let input: string;
  switch (variant) {
    case 0: {
      const options = [
        '{"appId":5,"kind":1}',
        '{"appId":["demo"],"kind":1}',
        '{"appId":{"x":1},"kind":1}',
        '{"appId":"demo","kind":"BOGUS"}',
        '{"appId":"demo","kind":true}',
        '{"appId":"demo","kind":1.5}',
        '{"appId":"demo","kind":{}}',
        '{"appId":null,"kind":null,"rejectedValue":7}',
        '{"appId":"demo","kind":1,"rejectedValue":"x","errcode":"x"}',
        '{"appId":"demo","kind":1,"rejectedValue":"x","errcode":1e400}',
        '{"appId":"demo","kind":1,"rejectedValue":["x"]}',
        "null",
        "[1,2]",
        '"demo"',
        "42",
        "true",
      ];
      body = Buffer.from(rng.pick(options));
      // Fields of InvalidateTokenRequest are unknown (and ignored) in GetToken.
      if (body.includes("rejectedValue")) path = INVALIDATE;
      input = `wrong types ${body}`;
      break;
    }
    case 1: {
      const n = rng.pick([
        "123456789012345678901234567890",
        "1e400",
        "-1e400",
        "9007199254740993",
        "-2147483649",
        "4294967296",
        "0.0000001",
      ]);
      body = Buffer.from(
        `{"appId":"demo","kind":${n}${path === INVALIDATE ? `,"rejectedValue":"x","errcode":${n}` : ""}}`,
      );
      input = `huge numbers ${body}`;
      break;
    }
    case 2: {
      body = rng.chance(0.5)
        ? rng.bytes(rng.range(1, 256))
        : Buffer.from(
            rng.pick([
              '{"appId":',
              "{not json",
              '{"appId":"demo",}',
              "{'appId':'demo'}",
              "",
              "\ufeff{}",
              "{}}",
            ]),
          );
      input = `invalid JSON ${hex(body)}`;
      break;
    }
    case 3: {
      const depth = rng.range(1000, 30_000);
      body = Buffer.from(
        rng.chance(0.5)
          ? "[".repeat(depth) + "]".repeat(depth)
          : `${'{"a":'.repeat(depth / 5)}1${"}".repeat(depth / 5)}`,
      );
      input = `JSON nested ${depth} deep`;
      break;
    }
    case 4: {
      const n = rng.range(64 * 1024 + 1, 120_000);
      body = Buffer.from(JSON.stringify({ appId: "x".repeat(n), kind: 1 }));
      input = `${body.length}-byte JSON`;
      expect = { status: 429, resetOk: true };
      break;
    }
    case 5: {
      contentType = rng.pick([
        "text/plain",
        "application/xml",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/proto+json",
        rng.bytes(6).toString("hex"),
      ]);
      body = Buffer.from('{"appId":"demo","kind":1}');
      input = `content-type ${contentType}`;
      expect = { status: 415 };
      break;
    }
    case 6: {
      body = Buffer.from(
        `{"appId":"demo","kind":"TOKEN_KIND_ACCESS_TOKEN","zzz":${rng.u32()},"nested":{"a":[1,2]}}`,
      );
      input = `unknown JSON fields ${body}`;
      expect = { allow200: path === GET_TOKEN };
      break;
    }
    case 7: {
      const name = rng.pick([
        "connect-timeout-ms",
        "connect-protocol-version",
        "content-encoding",
        "connect-content-encoding",
      ]);
      const value = rng.pick(["-1", "abc", "0", "99999999999", "2", "snappy", "gzip", "", "1e3"]);
      headers = { [name]: value };
      body = Buffer.from('{"appId":"demo","kind":1}');
      input = `${name}: ${JSON.stringify(value)}`;
      expect = { allow200: path === GET_TOKEN };
      break;
    }
    default: {
      contentType = "application/proto";
      body = rng.bytes(rng.range(1, 256));
      input = `application/proto garbage ${hex(body)}`;
      expect = { allow200: true };
    }
  }
  const viaH2 = rng.chance(0.25);
  return {
    input: `${viaH2 ? "h2" : "HTTP/1.1"} POST ${path} ${input}`,
    run: async (ctx) => {
      const a = viaH2
        ? fromH2(
            await h2Call(ctx.pools.connect.get(), {
              headers: {
                ":method": "POST",
                ":path": path,
                "content-type": contentType,
                ...headers,
              },
              body: [body],
              timeoutMs: ctx.timeoutMs,
            }),
          )
        : fromH1(
            await h1Call(ctx.ports[port], ctx.agent, {
              method: "POST",
              path,
              headers: { "content-type": contentType, ...headers },
              body,
              timeoutMs: ctx.timeoutMs,
            }),
          );
      return connectVerdict(a, expect);
    },
  };
};

const httpMethodPath: Gen = (rng, port) => {
  const variant = rng.int(3);
  let method: string;
  let path: string;
  let expect: HttpExpectation;
  if (variant === 0) {
    method = rng.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]);
    path = rng.pick(RPC_PATHS);
    // Bidi streams need HTTP/2: connect-node says 505 before looking at the method.
    expect = { status: path.includes("Reflection") ? 505 : 405, bare: [404, 405, 505] };
    if (method === "GET" && rng.chance(0.5))
      path += `?connect=v1&encoding=json&message=${encodeURIComponent('{"appId":"demo","kind":1}')}`;
  } else if (variant === 1) {
    method = "POST";
    path = rng.pick([
      "/",
      "/nope",
      "/tokenbroker.v1.TokenService/Nope",
      "/tokenbroker.v1.TokenService/GetToken/x",
      "/TOKENBROKER.V1.TOKENSERVICE/GETTOKEN",
      `/${encodeURIComponent(rng.bytes(12).toString("latin1"))}`,
      `/${"a/".repeat(rng.range(10, 2000))}`,
      "/%2e%2e/%2e%2e/etc/passwd",
      "/tokenbroker.v1.TokenService%2FGetToken",
    ]);
    expect = { status: 404 };
  } else {
    method = rng.pick(["GET", "POST", "DELETE"]);
    path = rng.pick(["/metrics", "/_emulator/apps", "/healthz", "/favicon.ico", "/.env"]);
    expect = { status: 404 };
  }
  return {
    input: `${method} ${path.slice(0, 120)}`,
    run: async (ctx) =>
      connectVerdict(
        fromH1(
          await h1Call(ctx.ports[port], ctx.agent, {
            method,
            path,
            headers: { "content-type": "application/json" },
            ...(method === "GET" || method === "OPTIONS" ? {} : { body: Buffer.from("{}") }),
            timeoutMs: ctx.timeoutMs,
          }),
        ),
        expect,
      ),
  };
};

const B = '{"appId":"demo","kind":1}';
const RAW_H1: readonly { name: string; request: string; expect: RawH1Expectation }[] = [
  {
    name: "header without colon",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nBogusHeader\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "space in header name",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "NUL in header value",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "Content-Length and Transfer-Encoding",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "two Content-Lengths",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`,
    expect: { statuses: [400] },
  },
  {
    name: "Content-Length abc",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "Content-Length -1",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "Content-Length 10^20",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "bad chunk size",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "Transfer-Encoding garbage",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, bogus\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "obs-fold",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\nContent-Type: application/json\r\nContent-Length: ${B.length}\r\n\r\n${B}`,
    expect: { statuses: [400] },
  },
  {
    name: "bare LF",
    request: `POST ${GET_TOKEN} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: ${B.length}\n\n${B}`,
    expect: { statuses: [400] },
  },
  {
    name: "HTTP/9.9",
    request: `POST ${GET_TOKEN} HTTP/9.9\r\nHost: x\r\n\r\n`,
    expect: { statuses: [400] },
  },
  {
    name: "20 KB header",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20000)}\r\n\r\n`,
    expect: { statuses: [431] },
  },
  {
    name: "3000 headers",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: 1\r\n`).join("")}\r\n`,
    expect: { statuses: [431] },
  },
  {
    name: "20 KB URL",
    request: `POST /${"a".repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    expect: { statuses: [431] },
  },
  {
    name: "HTTP/1.1 without Host",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${B.length}\r\n\r\n${B}`,
    expect: { statuses: [400] },
  },
  {
    name: "HTTP/1.0 with Host",
    request: `POST ${GET_TOKEN} HTTP/1.0\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}`,
    expect: { statuses: [415] },
  },
  {
    name: "absolute-form URI",
    request: `POST http://evil.example${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${B.length}\r\n\r\n${B}`,
    expect: { statuses: [404] },
  },
  {
    name: "CONNECT",
    request: "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n",
    expect: { closeOk: true, statuses: [400] },
  },
  {
    name: "Upgrade: h2c",
    request:
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    expect: { statuses: [404] },
  },
  {
    name: "Upgrade: websocket",
    request: `GET ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    expect: { statuses: [405] },
  },
  {
    name: "Expect: bogus",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: bogus\r\nContent-Length: ${B.length}\r\n\r\n${B}`,
    expect: { statuses: [417] },
  },
  {
    name: "control characters in Content-Type",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: \x7f\x01;;;=\r\nContent-Length: ${B.length}\r\n\r\n${B}`,
    expect: { statuses: [400] },
  },
  {
    name: "gRPC over HTTP/1.1, missing fields",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00`,
    expect: { statuses: [200] },
  },
  {
    name: "pipelined 404 then 415",
    request: `POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPOST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}`,
    expect: { statuses: [404], responses: 2 },
  },
  {
    name: "request smuggling TE.CL",
    request: `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n`,
    expect: { statuses: [400] },
  },
];

const NASTY = Buffer.from(" :\t\r\n\x00\x7f\xff\xc3\xa9;=,\"'\\/abcXYZ019-_", "latin1");

const http1BogusHeaders: Gen = (rng, port) => {
  if (rng.chance(0.6)) {
    const t = rng.pick(RAW_H1);
    return {
      input: t.name,
      run: async (ctx) =>
        rawH1Verdict(
          await rawExchange(ctx.ports[port], {
            chunks: [Buffer.from(t.request, "latin1")],
            until: h1Until(t.expect.responses ?? 1),
            timeoutMs: ctx.timeoutMs,
          }),
          t.expect,
        ),
    };
  }
  // A valid request line and Host, then random header lines made of nasty
  // bytes. No Content-Type can come out of it, so the answer is a 4xx
  // (400 from the parser, 415 from Connect, 431 when too large), or 505 for
  // a bidi stream (reflection) when the headers happen to parse: connect-node
  // refuses bidi over HTTP/1.1 first.
  const path = rng.pick(RPC_PATHS);
  const lines: Buffer[] = [];
  for (let i = rng.range(1, 6); i > 0; i--) {
    const n = rng.range(1, 40);
    const line = Buffer.alloc(n);
    for (let j = 0; j < n; j++)
      line[j] = rng.chance(0.7) ? (rng.pick([...NASTY]) as number) : rng.int(256);
    lines.push(line, Buffer.from("\r\n"));
  }
  const request = Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\n`, "latin1"),
    ...lines,
    Buffer.from("\r\n"),
  ]);
  return {
    input: `random header lines ${JSON.stringify(request.toString("latin1")).slice(0, 200)}`,
    run: async (ctx) =>
      rawH1Verdict(
        await rawExchange(ctx.ports[port], {
          chunks: [request],
          until: h1Until(1),
          timeoutMs: ctx.timeoutMs,
        }),
        path.includes("Reflection") ? { also: [505] } : {},
      ),
  };
};

const slowloris: Gen = (rng, port) => {
  const variants: { name: string; chunks: Buffer[]; ports: Port[] }[] = [
    {
      name: "HTTP/1.1 headers cut short",
      chunks: [`POST ${GET_TOKEN} HTTP/1.1\r\n`, "Host: x\r\n", "Content-Ty"].map((s) =>
        Buffer.from(s),
      ),
      ports: ["connect"],
    },
    {
      name: "HTTP/1.1 body shorter than Content-Length",
      chunks: [
        `POST ${GET_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        '{"appId":',
      ].map((s) => Buffer.from(s)),
      ports: ["connect"],
    },
    {
      name: "partial HTTP/2 preface",
      chunks: [H2_PREFACE.subarray(0, 6), H2_PREFACE.subarray(6, 14)],
      ports: ["grpc", "connect"],
    },
    {
      name: "HEADERS without END_HEADERS, no CONTINUATION",
      chunks: [
        H2_PREFACE,
        EMPTY_SETTINGS,
        h2Frame(
          H2.HEADERS,
          0,
          1,
          hpackLiteral([
            [":method", "POST"],
            [":scheme", "http"],
            [":path", GET_TOKEN],
          ]),
        ),
      ],
      ports: ["grpc", "connect"],
    },
    {
      name: "gRPC request whose message never completes",
      chunks: [
        H2_PREFACE,
        EMPTY_SETTINGS,
        h2Frame(
          H2.HEADERS,
          FLAG.END_HEADERS,
          1,
          hpackLiteral([
            [":method", "POST"],
            [":scheme", "http"],
            [":path", GET_TOKEN],
            [":authority", "fuzz"],
            ["content-type", "application/grpc"],
            ["te", "trailers"],
          ]),
        ),
        h2Frame(H2.DATA, 0, 1, grpcFrame(Buffer.alloc(10), 0, 100)),
      ],
      ports: ["grpc", "connect"],
    },
  ];
  const v = rng.pick(variants.filter((x) => x.ports.includes(port)));
  return {
    input: `${v.name}, then silence`,
    run: async (ctx) => {
      const r = await rawExchange(ctx.ports[port], {
        chunks: v.chunks,
        gapMs: 100,
        holdMs: 1000,
        timeoutMs: 5000,
      });
      if (r.outcome === "timeout")
        return { ok: false, label: "hang", detail: "not closed after holdMs" };
      const text = r.received.toString("latin1");
      if (text.startsWith("HTTP/1.1 ") && !/^HTTP\/1\.1 4\d\d /.test(text))
        return { ok: false, label: "unexpected answer", detail: text.slice(0, 100) };
      return {
        ok: true,
        label: r.outcome === "held" ? "held open, client closed after 1 s" : "server closed",
      };
    },
  };
};

const grpcWebFraming: Gen = (rng, port) => {
  const valid = validTokenRequest();
  const variants: [string, Buffer, boolean][] = [
    ["length prefix 100, body 10", grpcFrame(rng.bytes(10), 0, 100), true],
    ["trailer frame (0x80) from the client", grpcFrame(valid, 0x80), true],
    ["compressed flag, no encoding", grpcFrame(valid, 1), true],
    ["length prefix 4 GiB", grpcFrame(rng.bytes(3), 0, 0xffffffff), true],
    ["oversized message", grpcFrame(Buffer.alloc(rng.range(65537, 80000), 0x41)), true],
    ["random bytes", rng.bytes(rng.range(1, 256)), true],
    ["partial frame header", Buffer.from([0, 0, 0]), true],
    ["two messages", Buffer.concat([grpcFrame(valid), grpcFrame(valid)]), true],
    ["empty body", Buffer.alloc(0), true],
    [
      "valid message then garbage",
      Buffer.concat([grpcFrame(valid), rng.bytes(rng.range(1, 4))]),
      true,
    ],
    [`flags 0x${rng.range(2, 0x7f).toString(16)}`, grpcFrame(valid, rng.range(2, 0x7f)), false],
    ["random message", grpcFrame(rng.bytes(rng.range(1, 128))), false],
  ];
  const path = rng.pick([GET_TOKEN, INVALIDATE, WATCH]);
  // A valid WatchToken would stream until canceled: only refused inputs there.
  const [name, body, nonOk] = rng.pick(path === WATCH ? variants.filter((v) => v[2]) : variants);
  // +json reads the message as JSON; a protobuf body then fails to parse.
  const contentType = rng.pick([
    "application/grpc-web+proto",
    "application/grpc-web",
    "application/grpc-web-text",
    "application/grpc-web+json",
  ]);
  const viaH2 = rng.chance(0.25);
  const headers = {
    "content-type": contentType,
    ...(rng.chance(0.5) ? { "x-grpc-web": "1" } : {}),
  };
  return {
    input: `${viaH2 ? "h2" : "HTTP/1.1"} ${path} ${contentType} ${name} ${hex(body)}`,
    run: async (ctx) => {
      if (viaH2) {
        const r = await h2Call(ctx.pools.connect.get(), {
          headers: { ":method": "POST", ":path": path, ...headers },
          body: [body],
          timeoutMs: ctx.timeoutMs,
          cancelAfterFirstMessage: path === WATCH,
        });
        if (r.canceledAfterMessage) return { ok: true, label: "stream message (client canceled)" };
        const s = r.headers?.["grpc-status"];
        return grpcWebVerdict(
          fromH2(r),
          Array.isArray(s) ? s[0] : s,
          nonOk && contentType !== "application/grpc-web+json",
        );
      }
      const r = await h1Call(ctx.ports[port], ctx.agent, {
        method: "POST",
        path,
        headers,
        body,
        timeoutMs: ctx.timeoutMs,
      });
      const s = r.headers?.["grpc-status"];
      return grpcWebVerdict(
        fromH1(r),
        Array.isArray(s) ? s[0] : s,
        nonOk && contentType !== "application/grpc-web+json",
      );
    },
  };
};

const connectStreamFraming: Gen = (rng, port) => {
  const json = rng.chance(0.5);
  const variants: [string, Buffer][] = [
    ["incomplete envelope", Buffer.from([0, 0, 0, 0, 100, 1, 2])],
    ["end-stream envelope first", grpcFrame(Buffer.from("{}"), 2)],
    ["length prefix 4 GiB", grpcFrame(rng.bytes(4), 0, 0xffffffff)],
    ["random bytes", rng.bytes(rng.range(1, 128))],
    ["compressed flag, no encoding", grpcFrame(Buffer.from('{"appId":"demo","kind":1}'), 1)],
    [
      "unknown app",
      grpcFrame(
        json
          ? Buffer.from('{"appId":"nope","kind":1}')
          : Buffer.concat([lenField(1, "nope"), varintField(2, 1)]),
      ),
    ],
    [
      "kind 999",
      grpcFrame(
        json
          ? Buffer.from('{"appId":"demo","kind":999}')
          : Buffer.concat([lenField(1, "demo"), varintField(2, 999)]),
      ),
    ],
    ["two messages", Buffer.concat([grpcFrame(Buffer.from("{}")), grpcFrame(Buffer.from("{}"))])],
    ["empty body", Buffer.alloc(0)],
  ];
  const [name, body] = rng.pick(variants);
  const contentType = json ? "application/connect+json" : "application/connect+proto";
  return {
    input: `WatchToken ${contentType} ${name} ${hex(body)}`,
    run: async (ctx) =>
      connectStreamVerdict(
        fromH1(
          await h1Call(ctx.ports[port], ctx.agent, {
            method: "POST",
            path: WATCH,
            headers: { "content-type": contentType },
            body,
            timeoutMs: ctx.timeoutMs,
          }),
        ),
      ),
  };
};

// ---- the batch ----

interface CategorySpec {
  readonly gen: Gen;
  /** Cases per batch, per port it applies to. */
  readonly perPort: number;
  readonly ports: readonly Port[];
}

export const SPECS: Record<Category, CategorySpec> = {
  "tcp-random-bytes": { gen: tcpRandomBytes, perPort: 12, ports: ["grpc", "connect"] },
  "h2-garbage-after-preface": {
    gen: h2GarbageAfterPreface,
    perPort: 8,
    ports: ["grpc", "connect"],
  },
  "h2-random-frames": { gen: h2RandomFrames, perPort: 20, ports: ["grpc", "connect"] },
  "grpc-random-message": { gen: grpcRandomMessage, perPort: 90, ports: ["grpc", "connect"] },
  "grpc-truncated-frame": { gen: grpcTruncatedFrame, perPort: 15, ports: ["grpc", "connect"] },
  "grpc-reset-mid-message": { gen: grpcResetMidMessage, perPort: 10, ports: ["grpc", "connect"] },
  "grpc-compressed-no-encoding": {
    gen: grpcCompressedNoEncoding,
    perPort: 10,
    ports: ["grpc", "connect"],
  },
  "grpc-oversized": { gen: grpcOversized, perPort: 8, ports: ["grpc", "connect"] },
  "protobuf-hostile": { gen: protobufHostile, perPort: 80, ports: ["grpc", "connect"] },
  "grpc-absurd-deadline": { gen: grpcAbsurdDeadline, perPort: 20, ports: ["grpc", "connect"] },
  "grpc-hostile-headers": { gen: grpcHostileHeaders, perPort: 20, ports: ["grpc", "connect"] },
  "connect-json-hostile": { gen: connectJsonHostile, perPort: 120, ports: ["connect"] },
  "http-method-path": { gen: httpMethodPath, perPort: 40, ports: ["connect"] },
  "http1-bogus-headers": { gen: http1BogusHeaders, perPort: 60, ports: ["connect"] },
  slowloris: { gen: slowloris, perPort: 2, ports: ["grpc", "connect"] },
  "grpc-web-framing": { gen: grpcWebFraming, perPort: 60, ports: ["connect"] },
  "connect-stream-framing": { gen: connectStreamFraming, perPort: 30, ports: ["connect"] },
};

/** One batch of cases, every category, in a seeded random order. */
export function makeBatch(rng: Prng): FuzzCase[] {
  const cases: FuzzCase[] = [];
  for (const category of CATEGORIES) {
    const spec = SPECS[category];
    for (const port of spec.ports) {
      for (let i = 0; i < spec.perPort; i++) {
        const seed = rng.u32();
        const { input, run } = spec.gen(new Prng(seed), port);
        cases.push({ category, port, seed, input, run });
      }
    }
  }
  for (let i = cases.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [cases[i], cases[j]] = [cases[j] as FuzzCase, cases[i] as FuzzCase];
  }
  return cases;
}
