import { Gauge, type Registry } from "prom-client";
import type { Clock } from "../shared/clock.js";
import { safeLabel } from "./label.js";

/** One cached credential as seen at scrape time. Times are epoch ms. */
export interface CredentialSample {
  app: string;
  kind: string;
  expiresAt: number;
  fetchedAt: number;
  version: number;
}

/** One app's upstream quota for one endpoint as seen at scrape time. */
export interface QuotaSample {
  app: string;
  endpoint: string;
  used: number;
  /** The share of `limit` this broker allows itself. */
  budget: number;
  /** WeChat's daily limit for the endpoint. */
  limit: number;
}

type Reader<T> = () => readonly T[];

/**
 * A gauge whose values are recomputed from `read` on every scrape, so they
 * are never stale and entries that disappeared (an app removed) disappear
 * from the output too.
 */
function scrapedGauge<T, L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => readonly T[] | undefined,
  sample: (item: T) => { labels: Record<L, string>; value: number },
): void {
  const gauge: Gauge<L> = new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      gauge.reset();
      for (const item of read() ?? []) {
        const { labels, value } = sample(item);
        const safe = Object.fromEntries(
          Object.entries<string>(labels).map(([k, v]) => [k, safeLabel(v)]),
        ) as Record<L, string>;
        gauge.set(safe, value);
      }
    },
  });
}

/** Registers the credential gauges; `source()` is read at scrape time. */
export function registerCredentialGauges(
  registry: Registry,
  source: () => { read: Reader<CredentialSample>; clock: Clock } | undefined,
): void {
  // Each sample carries the scrape's `now`, read once per gauge.
  const read = () => {
    const s = source();
    if (!s) return undefined;
    const now = s.clock.now();
    return s.read().map((c) => ({ c, now }));
  };
  const labels = ["app", "kind"] as const;
  const gauge = (name: string, help: string, value: (c: CredentialSample, now: number) => number) =>
    scrapedGauge(registry, name, help, labels, read, ({ c, now }) => ({
      labels: { app: c.app, kind: c.kind },
      value: value(c, now),
    }));
  gauge(
    "tokenbroker_credential_remaining_seconds",
    "Seconds until the cached credential expires (negative once expired)",
    (c, now) => (c.expiresAt - now) / 1000,
  );
  gauge(
    "tokenbroker_credential_age_seconds",
    "Seconds since the cached credential was fetched from WeChat",
    (c, now) => (now - c.fetchedAt) / 1000,
  );
  gauge(
    "tokenbroker_credential_version",
    "Version of the cached credential; rises by one on every refresh",
    (c) => c.version,
  );
}

/** Registers the quota gauges; `read()` is called at scrape time. */
export function registerQuotaGauges(
  registry: Registry,
  read: () => readonly QuotaSample[] | undefined,
): void {
  const labels = ["app", "endpoint"] as const;
  const gauge = (name: string, help: string, value: (q: QuotaSample) => number) =>
    scrapedGauge(registry, name, help, labels, read, (q: QuotaSample) => ({
      labels: { app: q.app, endpoint: q.endpoint },
      value: value(q),
    }));
  gauge("tokenbroker_quota_used", "Upstream calls counted against today's quota", (q) => q.used);
  gauge(
    "tokenbroker_quota_remaining",
    "Calls left in this broker's budget today (budget minus used)",
    (q) => q.budget - q.used,
  );
  gauge("tokenbroker_quota_limit", "WeChat's daily call limit for the endpoint", (q) => q.limit);
}
