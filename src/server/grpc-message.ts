import type { NodeHandler } from "./connect-handler.js";

type AddTrailers = (headers: Record<string, string | string[] | number | undefined>) => void;

/**
 * Makes connect-node's `grpc-message` trailer readable by grpc-js clients.
 *
 * connect-node percent-encodes it with encodeURIComponent, but grpc-js
 * decodes it with decodeURI, which leaves reserved characters encoded: a
 * grpc-js client on this port would read "shutting down%3B reconnect". grpc-js
 * servers encode with encodeURI, which both client libraries decode, so the
 * message is re-encoded that way. Only gRPC (not gRPC-Web, whose trailers are
 * in the body and read by browsers with decodeURIComponent) is touched.
 */
export function withGrpcJsMessageEncoding(handler: NodeHandler): NodeHandler {
  return (req, res) => {
    const type = req.headers["content-type"] ?? "";
    if (type.startsWith("application/grpc") && !type.startsWith("application/grpc-web")) {
      const addTrailers = res.addTrailers.bind(res) as AddTrailers;
      (res as { addTrailers: AddTrailers }).addTrailers = (trailers) => {
        const message = trailers["grpc-message"];
        if (typeof message === "string") {
          trailers["grpc-message"] = reencode(message);
        }
        addTrailers(trailers);
      };
    }
    handler(req, res);
  };
}

function reencode(message: string): string {
  try {
    return encodeURI(decodeURIComponent(message));
  } catch {
    return message;
  }
}
