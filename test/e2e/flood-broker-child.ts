/**
 * A broker in a process of its own for the stream-flood test, so the test can
 * force a GC and read this process's memory alone. Run as
 * `node --expose-gc --import tsx test/e2e/flood-broker-child.ts` with an IPC
 * channel and the broker's extra config (JSON) in FLOOD_BROKER_CONFIG. Audit
 * lines go to stdout, one JSON object a line.
 */
import { createLogger, silentLogger } from "../../src/shared/logger.js";
import { startBrokerHarness } from "../helpers/broker-harness.js";

export type FloodChildMessage =
  | { type: "ready"; grpcPort: number; connectPort: number }
  | { type: "memory"; rss: number; heapUsed: number; sockets: number };

const audit = createLogger({ level: "info", base: { stream: "audit" } });
const harness = await startBrokerHarness(
  [{ id: "demo", appid: "wx00000000000flood", secret: "flood-secret-0123456789" }],
  500,
  {
    logger: silentLogger(),
    audit,
    config: JSON.parse(process.env.FLOOD_BROKER_CONFIG ?? "{}") as Record<string, unknown>,
  },
);

async function memory(): Promise<FloodChildMessage> {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const sockets = process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
  const { rss, heapUsed } = process.memoryUsage();
  return { type: "memory", rss, heapUsed, sockets };
}

process.on("message", (message: { type: string }) => {
  if (message.type === "memory") void memory().then((m) => process.send?.(m));
});
process.on("disconnect", () => {
  void harness.close().finally(() => process.exit(0));
});
process.send?.({
  type: "ready",
  grpcPort: harness.broker.grpc.port,
  connectPort: harness.broker.connect.port,
} satisfies FloodChildMessage);
