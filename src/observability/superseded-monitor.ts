import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AppliedRollout } from "../token/applied-rollout.js";
import type { TokenManager } from "../token/token-manager.js";
import type { AlertManager } from "./alerts.js";
import type { AppliedSample } from "./applied-gauges.js";
import type { BrokerMetrics } from "./metrics.js";

/** How often the clients' versions are counted (the same pace as the other sampled gauges). */
export const SUPERSEDED_CHECK_EVERY_MS = 15_000;
export const SUPERSEDED_ALERT = "clients_on_superseded_version";

export interface SupersededMonitorOptions {
  manager: Pick<TokenManager, "held">;
  rollout: AppliedRollout;
  alerts: Pick<AlertManager, "raise" | "resolve">;
  metrics: Pick<BrokerMetrics, "setAppliedSource">;
  clock: Clock;
  logger: Logger;
  /** Alert this long before the replaced version clients still use stops working. */
  leadMs: number;
  everyMs?: number;
}

/**
 * Counts, per credential this replica holds, the client instances on its
 * current version and on a replaced one (applied-version feedback), for the
 * gauges, and alerts while clients are on a replaced version that stops
 * working within `leadMs` (critical once it has stopped): they missed the
 * update, and their WeChat calls are about to fail with 40001. The alert
 * resolves once no client acknowledges a replaced version any more.
 */
export class SupersededMonitor {
  readonly #o: SupersededMonitorOptions;
  #samples = new Map<string, AppliedSample>();
  #cancel: (() => void) | undefined;
  #stopped = false;

  constructor(o: SupersededMonitorOptions) {
    this.#o = o;
    o.metrics.setAppliedSource(() => [...this.#samples.values()], o.clock);
  }

  start(): void {
    const tick = () => {
      void this.check().finally(() => {
        if (!this.#stopped)
          this.#cancel = this.#o.clock.schedule(tick, this.#o.everyMs ?? SUPERSEDED_CHECK_EVERY_MS);
      });
    };
    tick();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }

  /** One count of every held credential's clients, with the alert decisions. */
  async check(): Promise<void> {
    const { manager, rollout, alerts, clock, leadMs } = this.#o;
    const next = new Map<string, AppliedSample>();
    for (const { key, credential } of manager.held()) {
      const id = `${key.appId}/${key.kind}`;
      let summary: Awaited<ReturnType<AppliedRollout["summary"]>>;
      try {
        summary = await rollout.summary(key, credential);
      } catch (err) {
        // The store is down: keep the last count until it answers again.
        const last = this.#samples.get(id);
        if (last) next.set(id, last);
        this.#o.logger.debug({ err: (err as Error).message }, "cannot count clients' versions");
        continue;
      }
      next.set(id, {
        app: key.appId,
        kind: key.kind,
        current: summary.current,
        superseded: summary.superseded,
        ...(summary.supersededValidUntil === undefined
          ? {}
          : { supersededValidUntil: summary.supersededValidUntil }),
      });
      const alertKey = { name: SUPERSEDED_ALERT, app: key.appId, kind: key.kind };
      if (summary.superseded === 0) {
        void alerts.resolve(alertKey);
        continue;
      }
      const until = summary.supersededValidUntil;
      const now = clock.now();
      if (until === undefined || until - now > leadMs) continue;
      const left = Math.round((until - now) / 1000);
      void alerts.raise(alertKey, {
        severity: left > 0 ? "warning" : "critical",
        summary:
          `${summary.superseded} client instance(s) of app '${key.appId}' still use ${key.kind} version ` +
          `${summary.supersededVersion}, replaced by version ${credential.version}; it ` +
          `${left > 0 ? `stops working in ${left} s` : "has stopped working"} (${new Date(until).toISOString()}). ` +
          "They missed the update: check that they watch (WatchToken) or re-fetch at refresh_after, " +
          "and acknowledge what they switched to (AckToken)",
        details: {
          kind: key.kind,
          clients: summary.superseded,
          version: summary.supersededVersion ?? 0,
          currentVersion: credential.version,
          validUntil: new Date(until).toISOString(),
          remainingSeconds: left,
        },
      });
    }
    this.#samples = next;
  }
}
