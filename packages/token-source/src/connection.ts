import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { TokenService } from "./gen/tokenbroker/v1/token_service_pb.js";
import type { TokenSourceCredentials } from "./options.js";

/** One broker address: its TokenService client on an HTTP/2 connection of its own. */
export interface BrokerConnection {
  readonly address: string;
  readonly client: Client<typeof TokenService>;
  /** Drops the connection (and every call on it). */
  close(): void;
}

/**
 * A gRPC client for `address`. HTTP/2 PINGs while a stream is open find a
 * connection whose peer stopped answering (a frozen process, a dropped NAT
 * entry) without waiting for TCP to notice, which can take many minutes.
 */
export function connectTo(
  address: string,
  credentials: TokenSourceCredentials,
  ping: { intervalMs: number; timeoutMs: number },
): BrokerConnection {
  const tls = credentials.tls;
  const baseUrl = `${tls ? "https" : "http"}://${address}`;
  const nodeOptions =
    typeof tls === "object"
      ? {
          ...(tls.ca === undefined ? {} : { ca: tls.ca }),
          ...(tls.cert === undefined ? {} : { cert: tls.cert }),
          ...(tls.key === undefined ? {} : { key: tls.key }),
        }
      : {};
  const sessions = new Http2SessionManager(
    baseUrl,
    { pingIntervalMs: ping.intervalMs, pingTimeoutMs: ping.timeoutMs },
    nodeOptions,
  );
  const bearer: Interceptor = (next) => (req) => {
    if (credentials.apiKey) req.header.set("authorization", `Bearer ${credentials.apiKey}`);
    return next(req);
  };
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager: sessions,
    interceptors: [bearer],
  });
  return {
    address,
    client: createClient(TokenService, transport),
    close: () => sessions.abort(),
  };
}
