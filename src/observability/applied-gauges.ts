import { Gauge, type Registry } from "prom-client";
import { safeLabel } from "./label.js";

/** One credential's clients as the applied-version feedback last counted them. */
export interface AppliedSample {
  app: string;
  kind: string;
  /** Client instances on the current version. */
  current: number;
  /** Client instances still on a replaced version. */
  superseded: number;
  /** When the replaced version they use stops working (epoch ms), if any. */
  supersededValidUntil?: number;
}

/**
 * The applied-version gauges, read at scrape time from the last count
 * (counts only: which clients they are stays in the broker). Every replica
 * sharing a store counts the same clients, so aggregate with max, not sum.
 */
export function registerAppliedGauges(
  registry: Registry,
  source: () => { read: () => readonly AppliedSample[]; now: () => number } | undefined,
): void {
  const clients: Gauge<"app" | "kind" | "version"> = new Gauge({
    name: "tokenbroker_clients",
    help:
      "Client instances acknowledging (AckToken) the current version of the credential or a replaced one " +
      "(version=current|superseded); the same on every replica sharing the store",
    labelNames: ["app", "kind", "version"],
    registers: [registry],
    collect() {
      clients.reset();
      for (const s of source()?.read() ?? []) {
        const labels = { app: safeLabel(s.app), kind: safeLabel(s.kind) };
        clients.set({ ...labels, version: "current" }, s.current);
        clients.set({ ...labels, version: "superseded" }, s.superseded);
      }
    },
  });
  const remaining: Gauge<"app" | "kind"> = new Gauge({
    name: "tokenbroker_superseded_remaining_seconds",
    help:
      "Seconds until the replaced version some clients still use stops working at WeChat " +
      "(negative once it has); absent while no client is on a replaced version",
    labelNames: ["app", "kind"],
    registers: [registry],
    collect() {
      remaining.reset();
      const s = source();
      if (!s) return;
      const now = s.now();
      for (const a of s.read()) {
        if (a.superseded === 0 || a.supersededValidUntil === undefined) continue;
        remaining.set(
          { app: safeLabel(a.app), kind: safeLabel(a.kind) },
          (a.supersededValidUntil - now) / 1000,
        );
      }
    },
  });
}
