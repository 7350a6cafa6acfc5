import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../shared/logger.js";
import type { BrokerMetrics } from "./metrics.js";

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port; read the chosen one from the result. */
  port: number;
  metrics: Pick<BrokerMetrics, "contentType" | "scrape">;
  logger: Logger;
}

export interface MetricsServer {
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:9464/`. */
  readonly url: string;
  /** Stops listening and drops open connections. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * A plain HTTP/1.1 server for Prometheus: `GET /metrics` (the scrape) and
 * `GET /healthz` ("ok"); anything else is 404. Kept apart from the RPC
 * listeners so a scrape never competes with token traffic for a port.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const logger = options.logger.child({ component: "metrics-server" });
  const server = createServer((req, res) => {
    void handle(req, res, options.metrics, logger);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}/`;
  logger.info({ url }, "metrics server listening");
  let closed: Promise<void> | undefined;
  return {
    port,
    url,
    close() {
      closed ??= new Promise<void>((resolve) => {
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
): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (req.method === "GET" && path === "/metrics") {
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
