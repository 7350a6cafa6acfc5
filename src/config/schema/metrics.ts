import type { z } from "zod";
import { cidrSchema } from "../../security/policy.js";
import { bool, type Frozen, list, section, sha256Hex } from "../../shared/schema.js";
import { address } from "./listen.js";

/**
 * The metrics listener and what guards it (the scrape shows app ids, quota
 * use, refresh timing). `tls` and `allowCidrs` default to the security
 * section's (root.ts fills them in once both are read).
 */
export function metricsSchema() {
  return section({
    /** Absent: no metrics listener. */
    listen: address().optional(),
    /** Serve HTTPS with security.tls's files (its client CA and requireClientCert too). */
    tls: bool().optional(),
    /** Hex SHA-256 of the Bearer key a scrape must send. */
    apiKeySha256: sha256Hex().optional(),
    /** CIDRs scrapers may connect from; absent: security.allowCidrs. */
    allowCidrs: list(cidrSchema()).optional(),
    /** Accept a non-loopback address without TLS and a key (or client certificates). */
    allowUnprotectedNonLoopback: bool().prefault(false),
  });
}

type MetricsSettings = z.output<ReturnType<typeof metricsSchema>>;

/** The metrics listener's settings with the security section's defaults filled in. */
export type MetricsConfig = Frozen<Omit<MetricsSettings, "tls"> & { tls: boolean }>;

/** Fills in what the metrics section leaves to the security section. */
export function resolveMetrics(
  metrics: MetricsSettings,
  security: { readonly tls?: unknown; readonly allowCidrs?: readonly string[] },
): MetricsConfig {
  const allowCidrs = metrics.allowCidrs ?? security.allowCidrs;
  return {
    ...metrics,
    tls: metrics.tls ?? security.tls !== undefined,
    ...(allowCidrs ? { allowCidrs: [...allowCidrs] } : {}),
  };
}
