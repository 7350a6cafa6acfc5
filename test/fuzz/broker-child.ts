/**
 * The broker for the fuzz test, in a process of its own so the test can force
 * a GC and read the broker's heap alone. Run as
 * `node --expose-gc --import tsx test/fuzz/broker-child.ts` with an IPC
 * channel; see {@link ChildMessage} and {@link ParentMessage}.
 *
 * Error-level log lines (a handler that failed with a non-domain error, a
 * listener error) are collected and reported with each memory sample: hostile
 * input must be refused, not reach the code as a bug.
 */
import { createLogger } from "../../src/shared/logger.js";
import { startBrokerHarness } from "../helpers/broker-harness.js";
import {
  type ChildMessage,
  FUZZ_APP,
  type LoggedError,
  type MemorySample,
  type ParentMessage,
} from "./child-protocol.js";

const errors: LoggedError[] = [];
const logger = createLogger({
  level: "error",
  destination: {
    write(line: string) {
      try {
        const parsed = JSON.parse(line) as LoggedError;
        if (errors.length < 50) errors.push(parsed);
      } catch {
        if (errors.length < 50) errors.push({ msg: line });
      }
    },
  },
});

async function sample(): Promise<MemorySample> {
  const gc = globalThis.gc;
  if (!gc) throw new Error("run with --expose-gc");
  // Several rounds, with turns of the event loop between them, so finalizers
  // and closed sockets' buffers are collected too.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  const resources = process.getActiveResourcesInfo();
  const resourceTypes: Record<string, number> = {};
  for (const r of resources) resourceTypes[r] = (resourceTypes[r] ?? 0) + 1;
  return {
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    rss: m.rss,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    activeResources: resources.length,
    resourceTypes,
  };
}

function send(message: ChildMessage): void {
  process.send?.(message);
}

// A short idle timeout, so the test sees abandoned HTTP/2 connections reclaimed.
const harness = await startBrokerHarness([FUZZ_APP], 500, {
  logger,
  config: { listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0", idleTimeoutMs: 1000 } },
});

process.on("message", (message: ParentMessage) => {
  if (message.type === "memory") {
    void sample().then((s) =>
      send({ type: "memory", id: message.id, sample: s, errors: errors.splice(0) }),
    );
  } else if (message.type === "fault") {
    harness.emulator.control.injectFault({
      endpoint: "*",
      times: message.times,
      action: { type: "latency", ms: message.latencyMs },
    });
    send({ type: "fault", id: message.id });
  } else if (message.type === "close") {
    void harness.close().then(() => {
      send({ type: "closed" });
      process.disconnect?.();
    });
  }
});
// The test going away (even killed) ends the broker too.
process.on("disconnect", () => {
  void harness.close().finally(() => process.exit(0));
});

send({
  type: "ready",
  grpcPort: harness.broker.grpc.port,
  connectUrl: harness.broker.connect.url,
});
