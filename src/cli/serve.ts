import { startBroker } from "../broker.js";
import { loadConfig } from "../config/load-config.js";
import { createLogger } from "../shared/logger.js";
import { reloadOnHangup, stopOnSignals } from "./lifecycle.js";

/** `token-broker serve --config FILE`: run the broker from a config file. */
export async function serve(configPath: string): Promise<void> {
  const config = loadConfig(configPath, process.env);
  const logger = createLogger({ level: config.log.level });
  if (config.apps.length === 0)
    logger.warn("no apps configured; every GetToken will answer NOT_FOUND");
  const broker = await startBroker(config, { logger });
  stopOnSignals(() => broker.close(), logger);
  // Re-read from the same file, with the same environment overrides, as at start.
  reloadOnHangup(() => broker.reload(loadConfig(configPath, process.env)), logger);
}
