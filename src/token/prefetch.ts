import type { StoredCredential } from "../core/credential.js";
import type { Logger } from "../shared/logger.js";
import type { AppRegistry } from "./app.js";

/**
 * Fetches the access tokens of apps marked `prefetch` at start, in the
 * background: a failure is logged and the first request fetches instead.
 */
export function prefetchAccessTokens(
  apps: Pick<AppRegistry, "all">,
  get: (appId: string, kind: "access_token", signal: AbortSignal) => Promise<StoredCredential>,
  signal: AbortSignal,
  logger: Logger,
): void {
  for (const app of apps.all()) {
    if (!app.prefetch) continue;
    get(app.id, "access_token", signal).catch((err: unknown) => {
      logger.warn(
        { app: app.id, err: err instanceof Error ? err.message : String(err) },
        "prefetch failed; will fetch on first request",
      );
    });
  }
}
