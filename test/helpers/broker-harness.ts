import { type RunningBroker, startBroker } from "../../src/broker.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { createEmulator, type Emulator, type EmulatorApp } from "../../src/emulator/index.js";
import type { Clock } from "../../src/shared/clock.js";
import { type Logger, silentLogger } from "../../src/shared/logger.js";

export interface BrokerHarness {
  broker: RunningBroker;
  emulator: Emulator;
  grpcAddress: string;
  close(): Promise<void>;
}

export interface HarnessApp extends EmulatorApp {
  id: string;
  brokerType?: "official_account" | "mini_program";
  tokenMode?: "classic" | "stable";
  /** apps[].kinds in the broker config (absent: every kind of the type). */
  kinds?: string[];
}

/**
 * The whole broker, as `startBroker` builds it for production, on loopback
 * port 0 with the emulator as upstream. Real time unless a clock is given
 * (then broker and emulator share it).
 */
export async function startBrokerHarness(
  apps: HarnessApp[],
  graceMs = 2000,
  deps: { clock?: Clock; logger?: Logger; audit?: Logger; config?: Record<string, unknown> } = {},
): Promise<BrokerHarness> {
  const emulator = createEmulator({
    ...(deps.clock ? { clock: deps.clock } : {}),
    apps: apps.map(({ appid, secret, type }) => ({ appid, secret, ...(type ? { type } : {}) })),
  });
  const { url } = await emulator.listen(0, "127.0.0.1");
  const env: Record<string, string> = {};
  const config = parseConfig(
    {
      listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0" },
      upstream: { baseUrl: url, timeoutMs: 1000 },
      shutdown: { graceMs },
      ...deps.config,
      apps: apps.map((a, i) => {
        env[`SECRET_${i}`] = a.secret;
        return {
          id: a.id,
          appid: a.appid,
          type: a.brokerType ?? "official_account",
          tokenMode: a.tokenMode ?? "classic",
          prefetch: false,
          secret: { env: `SECRET_${i}` },
          ...(a.kinds ? { kinds: a.kinds } : {}),
        };
      }),
    },
    { env, readFile: () => "" },
  );
  const broker = await startBroker(config, {
    logger: deps.logger ?? silentLogger(),
    audit: deps.audit ?? silentLogger(),
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  return {
    broker,
    emulator,
    grpcAddress: `127.0.0.1:${broker.grpc.port}`,
    async close() {
      await broker.close();
      await emulator.close();
    },
  };
}
