import { decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import { Metadata } from "@grpc/grpc-js";

/**
 * Header names the transport owns. Handlers may not set them through
 * `responseHeader` / `responseTrailer` / `ConnectError.metadata`, and grpc-js
 * would reject or duplicate them.
 */
const RESERVED = new Set([
  "content-type",
  "content-length",
  "te",
  "trailer",
  "transfer-encoding",
  "connection",
  "user-agent",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-timeout",
]);

/**
 * grpc-js request metadata as fetch `Headers`, the way connect-node presents
 * HTTP headers to handlers: binary (`-bin`) values are base64, as on the wire.
 */
export function metadataToHeaders(metadata: Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      headers.append(key, typeof value === "string" ? value : encodeBinaryHeader(value));
    }
  }
  return headers;
}

/**
 * Handler-set headers or trailers as grpc-js metadata. Reserved and
 * pseudo-headers are dropped; `-bin` values are base64-decoded. Entries grpc-js
 * rejects (a value outside printable ASCII, say) are dropped too: this runs
 * while a status is being sent, where throwing would leave the call hanging.
 */
export function headersToMetadata(headers: Headers | undefined): Metadata {
  const metadata = new Metadata();
  headers?.forEach((value, key) => {
    if (RESERVED.has(key) || key.startsWith(":")) return;
    try {
      metadata.add(key, key.endsWith("-bin") ? Buffer.from(decodeBinaryHeader(value)) : value);
    } catch {
      // Not representable as gRPC metadata; see above.
    }
  });
  return metadata;
}

/** True when `headers` has anything worth sending. */
export function hasHeaders(headers: Headers): boolean {
  for (const key of headers.keys()) {
    if (!RESERVED.has(key)) return true;
  }
  return false;
}
