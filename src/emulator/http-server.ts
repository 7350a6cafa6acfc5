import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../shared/logger.js";
import type { ApiRequest } from "./api-request.js";
import type { Reply } from "./reply.js";

/** Bodies larger than this are treated as malformed (47001) rather than buffered. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Turns a parsed request into a reply; `signal` aborts when the server closes. */
export type Responder = (req: ApiRequest, signal: AbortSignal) => Promise<Reply>;

/**
 * The node:http shell around the emulator: parses the URL, query and JSON
 * body, hands an `ApiRequest` to the responder and writes its reply. A
 * `{hang: true}` reply leaves the request open until the client gives up or
 * `close()` destroys the socket.
 */
export class HttpServer {
  readonly #server: Server;
  readonly #responder: Responder;
  readonly #logger: Logger;
  readonly #closing = new AbortController();

  constructor(responder: Responder, logger: Logger) {
    this.#responder = responder;
    this.#logger = logger;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  listen(port: number, host: string): Promise<{ url: string; port: number }> {
    if (this.#closing.signal.aborted) {
      return Promise.reject(new Error("the emulator was closed; create a new one"));
    }
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const address = this.#server.address() as AddressInfo;
        const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
        resolve({ url: `http://${shownHost}:${address.port}`, port: address.port });
      });
    });
  }

  /** Stops accepting, aborts pending latencies and destroys every open socket. */
  close(): Promise<void> {
    this.#closing.abort(new Error("emulator closed"));
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#server.close((error) => (error ? reject(error) : resolve()));
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const parsed = await parseRequest(req);
      const reply = await this.#responder(parsed, this.#closing.signal);
      if ("hang" in reply) return;
      res.writeHead(reply.status, {
        "content-type": reply.contentType,
        "content-length": Buffer.byteLength(reply.body),
      });
      res.end(reply.body);
    } catch (error) {
      if (this.#closing.signal.aborted) {
        res.destroy();
        return;
      }
      this.#logger.error({ err: error, path: req.url?.split("?")[0] }, "emulator request failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("emulator internal error");
    }
  }
}

async function parseRequest(req: IncomingMessage): Promise<ApiRequest> {
  const url = new URL(req.url ?? "/", "http://emulator.invalid");
  const raw = await readBody(req);
  let body: Record<string, unknown> | undefined;
  let bodyMalformed = false;
  if (raw === undefined) {
    bodyMalformed = true;
  } else if (raw.trim() !== "") {
    try {
      const value: unknown = JSON.parse(raw);
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        body = value as Record<string, unknown>;
      } else {
        bodyMalformed = true;
      }
    } catch {
      bodyMalformed = true;
    }
  }
  const address = req.socket.remoteAddress ?? "";
  return {
    method: req.method ?? "GET",
    path: url.pathname,
    query: url.searchParams,
    body,
    bodyMalformed,
    ip: address.startsWith("::ffff:") ? address.slice(7) : address,
  };
}

/** The body as text, or undefined when it exceeds MAX_BODY_BYTES (the rest is drained). */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8");
}
