import type { Logger } from "../shared/logger.js";
import type { NodeHandler } from "./connect-handler.js";

// What the Connect port puts in front of connect-node's handler.

/**
 * connect-node throws synchronously, inside the http server's "request"
 * listener, when it cannot tell a request's authority (an HTTP/1.0 request or
 * a bare request line without Host): uncaught, that would end the process.
 * Such requests get 400 here, and any other synchronous throw is answered
 * instead of crashing.
 */
export function rejectMalformed(handler: NodeHandler, logger: Logger): NodeHandler {
  const badRequest = (
    req: Parameters<NodeHandler>[0],
    res: Parameters<NodeHandler>[1],
    message: string,
  ) => {
    if (!res.headersSent) {
      // "Connection" is an HTTP/1 header; HTTP/2 forbids it.
      const close = "stream" in req ? {} : { Connection: "close" };
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", ...close });
    }
    res.end(`${message}\n`);
  };
  return (req, res) => {
    dropUnrepresentableDeadline(req.headers);
    if (!("stream" in req) && !req.headers.host) {
      badRequest(req, res, "a Host header is required");
      return;
    }
    try {
      handler(req, res);
    } catch (err) {
      logger.warn(
        { err: (err as Error).message, url: req.url?.slice(0, 200) },
        "malformed request refused",
      );
      badRequest(req, res, "malformed request");
    }
  };
}

/** Node timers take at most 2^31-1 ms; connect-node passes larger deadlines on, and Node clamps them to 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const GRPC_TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * A legal deadline longer than about 24.8 days (e.g. grpc-timeout 99999999H)
 * would expire at once inside connect-node; for a token broker it means "no
 * deadline", so the header is dropped.
 */
function dropUnrepresentableDeadline(headers: Record<string, string | string[] | undefined>): void {
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string") {
    const m = /^(\d{1,8})([HMSmun])$/.exec(grpc);
    if (m && Number(m[1]) * (GRPC_TIMEOUT_UNIT_MS[m[2] ?? ""] ?? 0) > MAX_TIMER_MS)
      delete headers["grpc-timeout"];
  }
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > MAX_TIMER_MS) {
    delete headers["connect-timeout-ms"];
  }
}

/** Requests arriving on an already open HTTP/1.1 connection after close() get 503. */
export function refuseWhenClosing(handler: NodeHandler, isClosing: () => boolean): NodeHandler {
  return (req, res) => {
    if (!isClosing() || "stream" in req) {
      handler(req, res);
      return;
    }
    res.writeHead(503, { Connection: "close" });
    res.end();
  };
}
