import { cors } from "@connectrpc/connect";
import type { NodeHandler } from "./connect-handler.js";

/** How long browsers may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 7200;

const ALLOW_METHODS = cors.allowedMethods.join(", ");
const ALLOW_HEADERS = cors.allowedHeaders.join(", ");
const EXPOSE_HEADERS = cors.exposedHeaders.join(", ");

/**
 * Wraps `handler` with CORS for the Connect and gRPC-Web protocols, using the
 * header lists connect exports. Only origins in `allowedOrigins` (exact match,
 * or "*" for any) get CORS headers; with an empty list (the default) browsers
 * on other origins are refused and non-browser clients are unaffected.
 */
export function withCors(handler: NodeHandler, allowedOrigins: readonly string[]): NodeHandler {
  if (allowedOrigins.length === 0) return handler;
  const anyOrigin = allowedOrigins.includes("*");
  const origins = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    const preflight =
      req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (origin === undefined || !(anyOrigin || origins.has(origin))) {
      if (preflight) {
        res.writeHead(403);
        res.end();
        return;
      }
      handler(req, res);
      return;
    }
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    if (preflight) {
      res.writeHead(204, {
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_S),
      });
      res.end();
      return;
    }
    res.setHeader("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    handler(req, res);
  };
}
