import type { StoreDurability, TokenStore } from "./core/ports/token-store.js";
import type { AlertManager } from "./observability/alerts.js";
import type { Logger } from "./shared/logger.js";
import type { AppRegistry } from "./token/app.js";

/**
 * Grants (users' refresh tokens) cannot be re-fetched: a store that loses
 * them on restart logs every user out. At start, when any configured app
 * can hold grants, the store is asked whether it persists; when it cannot
 * promise it, the broker says so loudly (a warning in capitals), and keeps serving.
 * The critical alert waits for the first grant actually held
 * ({@link grantAtRisk}): a broker nobody authorizes users through has
 * nothing to lose.
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
  // Loud as the broker's other start-up warnings (NO AUTHENTICATION): capitals, every start.
  d.logger.warn(
    { apps: holders, detail: durability.detail },
    "STORE IS NOT DURABLE: users' grants (refresh tokens) held by this broker are lost when the store restarts, " +
      "and those users must authorize again",
  );
  return durability;
}

/** A grant was stored on a store that cannot keep it: a critical alert (once while active). */
export function grantAtRisk(alerts: AlertManager, durability: StoreDurability): void {
  void alerts.raise(
    { name: "store_not_durable" },
    {
      severity: "critical",
      summary:
        "users' OAuth grants are held in a store that does not persist: they are lost on its restart",
      details: { detail: durability.detail },
    },
  );
}
