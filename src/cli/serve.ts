import { startBroker } from "../broker.js";
import { loadConfig } from "../config/load-config.js";
import { createLogger } from "../shared/logger.js";
import { configDigest, watchConfig } from "./config-watch.js";
import { reloadLogged, reloadOnHangup, stopOnSignals } from "./lifecycle.js";

export interface ServeOptions {
  /** Also reload when the config or a file it names changes, checked this often (0: SIGHUP only). */
  watchIntervalMs?: number;
}

/** `token-broker serve --config FILE [--watch-config SECONDS]`: run the broker from a config file. */
export async function serve(configPath: string, options: ServeOptions = {}): Promise<void> {
  // Taken before the read, so that a change while the broker starts is not missed.
  const digest = options.watchIntervalMs ? configDigest(configPath) : undefined;
  const config = loadConfig(configPath, process.env);
  const logger = createLogger({ level: config.log.level });
  if (config.apps.length === 0)
    logger.warn("no apps configured; every GetToken will answer NOT_FOUND");
  const broker = await startBroker(config, { logger });
  // Re-read from the same file, with the same environment overrides, as at start.
  const reload = () => broker.reload(loadConfig(configPath, process.env));
  const stopWatching = options.watchIntervalMs
    ? watchConfig(
        configPath,
        options.watchIntervalMs,
        () => reloadLogged(reload, logger),
        logger,
        digest,
      )
    : undefined;
  stopOnSignals(() => {
    stopWatching?.();
    return broker.close();
  }, logger);
  reloadOnHangup(reload, logger);
}
