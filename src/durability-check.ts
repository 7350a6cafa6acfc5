import type { StoreDurability, TokenStore } from "./core/ports/token-store.js";
import type { AlertManager } from "./observability/alerts.js";
import type { Logger } from "./shared/logger.js";
import type { AppRegistry } from "./token/app.js";

/**
 * Grants (users' refresh tokens) cannot be re-fetched: a store that loses
 * them on restart logs every user out. At start, when any configured app
 * can hold grants, the store is asked whether it persists; when it cannot
 * promise it, the broker says so loudly (an error line and a critical
 * alert), and keeps serving.
 */
export async function checkGrantDurability(d: {
  readonly store: TokenStore;
  readonly apps: AppRegistry;
  readonly alerts: AlertManager;
  readonly logger: Logger;
}): Promise<StoreDurability | undefined> {
  const holders = d.apps
    .all()
    .filter((app) =>
      (app.kinds ?? d.apps.kinds.kindsOf(app.type)).some(
        (kind) => (d.apps.kinds.get(kind)?.subject ?? "none") !== "none",
      ),
    )
    .map((app) => app.id);
  if (holders.length === 0) return undefined;
  const durability = await d.store.durability();
  if (durability.durable) {
    d.logger.info({ detail: durability.detail }, "store keeps grants across restarts");
    return durability;
  }
  d.logger.error(
    { apps: holders, detail: durability.detail },
    "STORE IS NOT DURABLE: users' grants (refresh tokens) held by this broker are lost when the store restarts, " +
      "and those users must authorize again",
  );
  await d.alerts.raise(
    { name: "store_not_durable" },
    {
      severity: "critical",
      summary:
        "the credential store does not persist: users' OAuth grants would be lost on its restart",
      details: { apps: holders.length, detail: durability.detail },
    },
  );
  return durability;
}
