import { z } from "zod";
import { num, oneOf, section, text } from "../../shared/schema.js";
import { DEFAULT_MAX_SUBJECT_ENTRIES } from "../../token/credential-cache.js";
import { DEFAULT_REPORT_BUDGET } from "../../token/report-budget.js";

export function logSchema() {
  return section({
    level: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).prefault("info"),
  });
}

/**
 * graceMs: how long calls in flight may finish once the listeners close.
 * preStopDelayMs: how long before that health already answers NOT_SERVING
 * while everything is still served, so that load balancers and Kubernetes
 * endpoints stop sending new calls before the listeners go (0: close at once).
 */
export function shutdownSchema() {
  return section({
    graceMs: num(0, 600_000).prefault(5000),
    preStopDelayMs: num(0, 600_000).prefault(0),
  });
}

/** Where audit records go: a separate structured stream (stderr, stdout or a file). */
export function auditSchema() {
  const destination = text().transform((v, ctx) => {
    if (v === "stderr" || v === "stdout") return v;
    if (v.startsWith("/")) return { file: v };
    ctx.addIssue({ code: "custom", message: "expected stderr, stdout or an absolute file path" });
    return z.NEVER;
  });
  return section({ destination: destination.prefault("stderr") });
}

/**
 * The broker's in-memory copy (L1) of users' credentials: at most this many
 * are kept (least recently used evicted); the store holds the rest.
 */
export function cacheSchema() {
  return section({
    maxUserTokens: num(1, 100_000_000, true).prefault(DEFAULT_MAX_SUBJECT_ENTRIES),
  });
}

/** Refreshes InvalidateToken reports may cause per credential: a burst, then one per refill. */
export function invalidateSchema() {
  return section({
    refreshBurst: num(1, 100).prefault(DEFAULT_REPORT_BUDGET.burst),
    refreshRefillSeconds: num(1, 86_400).prefault(DEFAULT_REPORT_BUDGET.refillMs / 1000),
  }).transform((i) => ({
    refreshBurst: i.refreshBurst,
    refreshRefillMs: i.refreshRefillSeconds * 1000,
  }));
}
