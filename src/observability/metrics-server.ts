import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { inAnyCidr, parseCidr, parseIp } from "../security/ip.js";
import { loadTlsMaterial, ReloadingTlsFiles, type TlsOptions } from "../server/tls.js";
import { TLS_POLICY } from "../server/tls-policy.js";
import type { Logger } from "../shared/logger.js";
import type { BrokerMetrics } from "./metrics.js";

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port; read the chosen one from the result. */
  port: number;
  metrics: Pick<BrokerMetrics, "contentType" | "scrape">;
  logger: Logger;
  /** Serve HTTPS with these files (re-read like the RPC listeners'); absent: plain HTTP. */
  tls?: TlsOptions;
  /**
   * Hex SHA-256 of the key a scrape must send as `authorization: Bearer <key>`
   * (Prometheus' `authorization` / `bearer_token_file`); absent: no key.
   */
  apiKeySha256?: string;
  /** CIDRs scrapers may connect from; other connections are closed at once. Empty or absent: any. */
  allowCidrs?: readonly string[];
}

export interface MetricsServer {
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:9464/`. */
  readonly url: string;
  /** Stops listening and drops open connections. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 server for Prometheus: `GET /metrics` (the scrape) and
 * `GET /healthz` ("ok"); anything else is 404. Kept apart from the RPC
 * listeners so a scrape never competes with token traffic for a port.
 *
 * The scrape shows app ids, quota use and refresh timing, so it is guarded
 * like the RPC listeners: connections from outside `allowCidrs` are closed
 * before TLS or HTTP, and with `apiKeySha256` a scrape without that key gets
 * 401. `/healthz` needs no key (it tells nothing) but the address rule holds.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const logger = options.logger.child({ component: "metrics-server" });
  const keyHash = options.apiKeySha256 ? Buffer.from(options.apiKeySha256, "hex") : undefined;
  if (keyHash !== undefined && keyHash.length !== 32) {
    throw new Error("metrics apiKeySha256 must be 64 hex digits (the SHA-256 of the key)");
  }
  const allow = (options.allowCidrs ?? []).map((c) => parseCidr(c));
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res, options.metrics, logger, keyHash);
  };
  let tlsFiles: ReloadingTlsFiles | undefined;
  let server: Server;
  if (options.tls) {
    const material = await loadTlsMaterial(options.tls);
    tlsFiles = new ReloadingTlsFiles(options.tls, material, logger);
    const https = createHttpsServer(
      {
        ...material,
        // The RPC listeners' cipher policy; repeated on reload, which would reset it.
        ...TLS_POLICY,
        requestCert: material.ca !== undefined,
        rejectUnauthorized: options.tls.requireClientCert ?? false,
      },
      onRequest,
    );
    tlsFiles.onChange((next) => https.setSecureContext({ ...next, ...TLS_POLICY }));
    server = https;
  } else {
    server = createServer(onRequest);
  }
  if (allow.length > 0) {
    // "connection" carries the TCP socket, before any TLS handshake.
    server.on("connection", (socket: Socket) => {
      if (!inAnyCidr(parseIp(socket.remoteAddress ?? ""), allow)) socket.destroy();
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `${options.tls ? "https" : "http"}://${host}:${port}/`;
  logger.info({ url }, "metrics server listening");
  let closed: Promise<void> | undefined;
  return {
    port,
    url,
    close() {
      closed ??= new Promise<void>((resolve) => {
        tlsFiles?.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  metrics: MetricsServerOptions["metrics"],
  logger: Logger,
  keyHash: Buffer | undefined,
): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (req.method === "GET" && path === "/metrics") {
    if (keyHash !== undefined && !hasKey(req.headers.authorization, keyHash)) {
      res
        .writeHead(401, {
          "content-type": "text/plain; charset=utf-8",
          "www-authenticate": 'Bearer realm="metrics"',
        })
        .end("send authorization: Bearer <metrics key>\n");
      return;
    }
    try {
      const body = await metrics.scrape();
      res.writeHead(200, { "content-type": metrics.contentType }).end(body);
    } catch (err) {
      logger.error({ err }, "metrics scrape failed");
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("scrape failed\n");
    }
    return;
  }
  if (req.method === "GET" && path === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("ok");
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
}

/** Whether the header is `Bearer <key>` for the key whose SHA-256 is `keyHash` (constant time). */
function hasKey(header: string | undefined, keyHash: Buffer): boolean {
  const key = /^bearer[ \t]+(\S+)$/i.exec(header?.trim() ?? "")?.[1];
  if (key === undefined) return false;
  return timingSafeEqual(createHash("sha256").update(key, "utf8").digest(), keyHash);
}
