import { createEmulator, type EmulatorApp } from "../emulator/index.js";
import { createLogger } from "../shared/logger.js";
import { stopOnSignals } from "./lifecycle.js";

export interface EmulatorCommandOptions {
  host: string;
  port: number;
  /** "appid:secret" pairs. */
  apps: string[];
  tokenLifetimeSeconds: number;
}

/** `token-broker emulator`: the WeChat emulator alone, for tests, demos and benchmarks. */
export async function runEmulator(options: EmulatorCommandOptions): Promise<void> {
  const logger = createLogger({ base: { component: "emulator" } });
  const apps: EmulatorApp[] = options.apps.map((pair) => {
    const colon = pair.indexOf(":");
    if (colon <= 0 || colon === pair.length - 1)
      throw new Error(`--app expects APPID:SECRET, got '${pair}'`);
    return { appid: pair.slice(0, colon), secret: pair.slice(colon + 1) };
  });
  const emulator = createEmulator({
    apps,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds,
    logger,
  });
  // The emulator logs "emulator listening" with its URL; its control API is under /_emulator/.
  await emulator.listen(options.port, options.host);
  stopOnSignals(() => emulator.close(), logger);
}
