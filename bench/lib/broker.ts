import {
  type EmulatedApp,
  type EmulatedBroker,
  startEmulatedBroker,
} from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";

/**
 * The production broker in front of the emulator (src/emulated-broker.ts),
 * silent, with a short drain: what the benchmarks put under load.
 */
export function startBenchBroker(
  app: EmulatedApp,
  config: Record<string, unknown> = {},
): Promise<EmulatedBroker> {
  return startEmulatedBroker(
    {
      apps: [app],
      config: { upstream: { timeoutMs: 1000 }, shutdown: { graceMs: 500 }, ...config },
    },
    { logger: silentLogger(), audit: silentLogger() },
  );
}
