import type { BrokerConfig } from "./config/config.js";
import { type ConfigChanges, configChanges } from "./config/config-changes.js";
import type { Logger } from "./shared/logger.js";
import type { AppRegistry } from "./token/app.js";
import type { TokenManager } from "./token/token-manager.js";

export type ReloadReport = Omit<ConfigChanges, "apps">;

/**
 * Applies a re-read config to a running broker (SIGHUP, see src/cli/serve.ts):
 * added apps start (their access token is prefetched when configured),
 * removed apps stop (open watches end with NOT_FOUND, held credentials are
 * forgotten, scheduled refreshes lapse), a changed app (a reset AppSecret)
 * is used from its next fetch, and unchanged apps keep their credentials
 * and streams. Other settings keep their running values; a change to them
 * is logged as needing a restart.
 */
export class ConfigReloader {
  #running: BrokerConfig;
  readonly #prefetches = new AbortController();

  constructor(
    running: BrokerConfig,
    private readonly o: { apps: AppRegistry; manager: TokenManager; logger: Logger },
  ) {
    this.#running = running;
  }

  /**
   * Applies `next` (already validated). Throws ConfigErrors, having changed
   * nothing, when `next` cannot be applied at runtime.
   */
  apply(next: BrokerConfig): ReloadReport {
    const { apps, ...report } = configChanges(this.#running, next);
    const { logger, manager } = this.o;
    this.o.apps.replace(apps);
    manager.retireUnconfigured();
    // The settings other than apps stay those the broker started with.
    this.#running = { ...this.#running, apps };
    for (const app of apps) {
      if (!app.prefetch || !report.added.includes(app.id)) continue;
      manager.get(app.id, "access_token", this.#prefetches.signal).catch((err: unknown) => {
        logger.warn(
          { app: app.id, err: err instanceof Error ? err.message : String(err) },
          "prefetch of an added app failed; will fetch on first request",
        );
      });
    }
    logger.info(
      { added: report.added, removed: report.removed, changed: report.changed },
      "config reloaded",
    );
    if (report.restartNeeded.length > 0)
      logger.warn(
        { keys: report.restartNeeded },
        "config reload: these settings change only on restart; the running values stay",
      );
    return report;
  }

  /** Stops the prefetches of added apps (the broker is closing). */
  close(): void {
    this.#prefetches.abort();
  }
}
