import type { RunningBroker } from "../../src/broker.js";
import { type EmulatedApp, startEmulatedBroker } from "../../src/emulated-broker.js";
import type { Emulator } from "../../src/emulator/index.js";
import type { Clock } from "../../src/shared/clock.js";
import { type Logger, silentLogger } from "../../src/shared/logger.js";

export interface BrokerHarness {
  broker: RunningBroker;
  emulator: Emulator;
  grpcAddress: string;
  close(): Promise<void>;
}

export type HarnessApp = EmulatedApp;

/**
 * The whole broker, as `startBroker` builds it for production, on loopback
 * port 0 with the emulator as upstream (src/emulated-broker.ts). Real time
 * unless a clock is given (then broker and emulator share it).
 */
export async function startBrokerHarness(
  apps: HarnessApp[],
  graceMs = 2000,
  deps: { clock?: Clock; logger?: Logger; audit?: Logger; config?: Record<string, unknown> } = {},
): Promise<BrokerHarness> {
  const { broker, emulator, close } = await startEmulatedBroker(
    {
      apps,
      config: { upstream: { timeoutMs: 1000 }, shutdown: { graceMs }, ...deps.config },
    },
    {
      logger: deps.logger ?? silentLogger(),
      audit: deps.audit ?? silentLogger(),
      ...(deps.clock ? { clock: deps.clock } : {}),
    },
  );
  return { broker, emulator, grpcAddress: `127.0.0.1:${broker.grpc.port}`, close };
}
