import { ConfigError, ConfigErrors } from "../config/config.js";
import type { Logger } from "../shared/logger.js";

/**
 * Runs `stop` on the first SIGTERM or SIGINT and exits 0 when it finishes
 * (1 if it throws). A second signal exits at once, for an operator who does
 * not want to wait for the grace period.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "signal received; draining");
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * Runs `reload` on every SIGHUP (the usual "re-read your config" signal;
 * without a handler it would end the process), through {@link reloadLogged}.
 */
export function reloadOnHangup(reload: () => void, logger: Logger): void {
  process.on("SIGHUP", () => {
    logger.info({ signal: "SIGHUP" }, "reloading the config file");
    reloadLogged(reload, logger);
  });
}

/**
 * Runs `reload`; one that throws, such as a config with errors, is logged at
 * error level with the keys at fault, and the broker keeps its running config.
 */
export function reloadLogged(reload: () => void, logger: Logger): void {
  try {
    reload();
  } catch (err) {
    const keys = err instanceof ConfigErrors ? err.errors.map((e) => e.key) : undefined;
    logger.error(
      {
        ...(keys ? { keys } : {}),
        err: err instanceof ConfigError ? err.message : err,
      },
      "config reload rejected; the broker keeps its running config",
    );
  }
}
