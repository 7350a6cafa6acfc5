import { type BrokerDeps, type RunningBroker, startBroker } from "./broker.js";
import { parseConfig } from "./config/parse-config.js";
import {
  createEmulator,
  type Emulator,
  type EmulatorApp,
  type EmulatorOptions,
} from "./emulator/index.js";

/** An app known to both sides: the emulator (WeChat) and the broker's config. */
export interface EmulatedApp extends EmulatorApp {
  /** The broker's app id. */
  id: string;
  brokerType?: "official_account" | "mini_program";
  tokenMode?: "classic" | "stable";
  /** apps[].kinds in the broker config (absent: every kind of the type). */
  kinds?: string[];
  /** Default false: the first GetToken fetches, when the caller decides. */
  prefetch?: boolean;
}

/** A WeCom app of the broker's config, backed by the emulator's corps. */
export interface EmulatedWecomApp {
  readonly id: string;
  readonly corpid: string;
  readonly agentid?: string;
  readonly secret: string;
  readonly kinds?: string[];
  /** Default false: the first GetToken fetches. */
  readonly prefetch?: boolean;
}

export interface EmulatedBroker {
  readonly broker: RunningBroker;
  readonly emulator: Emulator;
  /** The emulator's base URL: the broker's upstream. */
  readonly emulatorUrl: string;
  /** Stops the broker, then the emulator. */
  close(): Promise<void>;
}

/**
 * The production broker (startBroker) in front of the built-in WeChat
 * emulator on loopback: the demo, the end-to-end tests and the benchmarks.
 * `config` is a config document (as in the YAML file) without `apps`; its
 * upstream points at the emulator, and each app's secret reaches the broker
 * through the environment, as a deployment passes it. Listeners default to
 * loopback port 0. The emulator shares the broker's clock.
 */
export async function startEmulatedBroker(
  options: {
    apps: readonly EmulatedApp[];
    /** WeCom apps (type wecom); their corps and secrets go to the emulator through `emulator.wecom`. */
    wecomApps?: readonly EmulatedWecomApp[];
    config?: Record<string, unknown>;
    /**
     * What `config`'s `{ env }` and `{ file }` references read besides the
     * apps' secrets (e.g. an SMTP password and CA); by default nothing.
     */
    configEnvironment?: { env?: Record<string, string>; readFile?: (path: string) => string };
    emulator?: Omit<EmulatorOptions, "apps" | "clock">;
  },
  deps: BrokerDeps,
): Promise<EmulatedBroker> {
  const { apps, config = {} } = options;
  const emulator = createEmulator({
    ...options.emulator,
    ...(deps.clock ? { clock: deps.clock } : {}),
    apps: apps.map(({ appid, secret, type, component }) => ({
      appid,
      secret,
      ...(type ? { type } : {}),
      ...(component ? { component } : {}),
    })),
  });
  try {
    const { url } = await emulator.listen(0, "127.0.0.1");
    const env: Record<string, string> = { ...options.configEnvironment?.env };
    const parsed = parseConfig(
      {
        listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0" },
        ...config,
        upstream: {
          timeoutMs: 2000,
          ...(config.upstream as object | undefined),
          baseUrl: url,
          wecomBaseUrl: url,
        },
        apps: [
          ...apps.map((a, i) => {
            env[`EMULATED_APP_SECRET_${i}`] = a.secret;
            return {
              id: a.id,
              appid: a.appid,
              type: a.brokerType ?? "official_account",
              tokenMode: a.tokenMode ?? "classic",
              prefetch: a.prefetch ?? false,
              secret: { env: `EMULATED_APP_SECRET_${i}` },
              ...(a.kinds ? { kinds: a.kinds } : {}),
            };
          }),
          ...(options.wecomApps ?? []).map((a, i) => {
            env[`EMULATED_WECOM_SECRET_${i}`] = a.secret;
            return {
              id: a.id,
              type: "wecom",
              corpid: a.corpid,
              ...(a.agentid === undefined ? {} : { agentid: a.agentid }),
              prefetch: a.prefetch ?? false,
              secret: { env: `EMULATED_WECOM_SECRET_${i}` },
              ...(a.kinds ? { kinds: a.kinds } : {}),
            };
          }),
        ],
      },
      { env, readFile: options.configEnvironment?.readFile ?? (() => "") },
    );
    const broker = await startBroker(parsed, deps);
    return {
      broker,
      emulator,
      emulatorUrl: url,
      async close() {
        await broker.close();
        await emulator.close();
      },
    };
  } catch (err) {
    await emulator.close();
    throw err;
  }
}
