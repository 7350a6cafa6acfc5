import type { HttpRoutes } from "../server/index.js";
import { type Peer, peerOf } from "../server/peer.js";
import type { Reply } from "./wechat-reply.js";

export type NodeRequest = Parameters<HttpRoutes>[0];
export type NodeResponse = Parameters<HttpRoutes>[1];

/** One façade request, as the endpoints read it. */
export interface FacadeRequest {
  readonly httpMethod: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly header: Headers;
  readonly peer: Peer | undefined;
  /** Aborts when the client goes away before its answer. */
  readonly signal: AbortSignal;
  /** The request URL without its query (which may hold a secret): what handlers are told. */
  readonly url: string;
  /** The body, read once; refused beyond `maxBytes`. */
  body(maxBytes: number): Promise<Buffer>;
}

/** A body larger than the façade accepts. */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the request body is larger than ${maxBytes} bytes`);
  }
}

/** The request's path (without the query), whatever the HTTP version. */
export function pathOf(req: NodeRequest): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

export function facadeRequest(req: NodeRequest, res: NodeResponse): FacadeRequest {
  const raw = req.url ?? "/";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort(new Error("the client went away"));
  });
  let read: Promise<Buffer> | undefined;
  return {
    httpMethod: (req.method ?? "GET").toUpperCase(),
    path,
    query: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)),
    header: headersOf(req),
    peer: peerOf(req.socket),
    signal: abort.signal,
    url: `http://${req.headers.host ?? req.headers[":authority"] ?? "facade"}${path}`,
    body(maxBytes) {
      read ??= readBody(req, maxBytes);
      return read;
    },
  };
}

/** Writes a WeChat-shaped answer. */
export function send(res: NodeResponse, reply: Reply): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  });
  res.end(body);
}

/** A query parameter, or a JSON body field (stable_token), as a string; absent when empty. */
export function param(
  query: URLSearchParams,
  name: string,
  json?: Readonly<Record<string, unknown>>,
): string | undefined {
  const fromBody = json?.[name];
  const value =
    typeof fromBody === "string" || typeof fromBody === "number" || typeof fromBody === "boolean"
      ? String(fromBody)
      : query.get(name);
  return value === null || value === "" ? undefined : value;
}

function headersOf(req: NodeRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

function readBody(req: NodeRequest, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new BodyTooLargeError(maxBytes));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}
