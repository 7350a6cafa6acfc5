import { num, ONLY_WHEN_VALID, section } from "../../shared/schema.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "../../token/refresh-policy.js";

/** WeChat rotates a stable token only in its last 300 s; a call earlier returns the same token. */
const STABLE_ROTATION_WINDOW_S = 300;

/** When credentials are refreshed and how failed refreshes back off; seconds in the YAML, ms inside. */
export function refreshSchema() {
  const d = DEFAULT_REFRESH_POLICY;
  return section({
    marginSeconds: num(1, 3600).prefault(d.marginMs / 1000),
    // Below 300 s: WeChat rotates a stable token only in its last 5 minutes.
    stableMarginSeconds: num(1, STABLE_ROTATION_WINDOW_S - 1).prefault(d.stableMarginMs / 1000),
    jitterRatio: num(0, 1).prefault(d.jitterRatio),
    minRemainingSeconds: num(0, 600).prefault(d.minRemainingMs / 1000),
    retryInitialMs: num(10, 600_000).prefault(d.retryInitialMs),
    retryMaxMs: num(10, 3_600_000).prefault(d.retryMaxMs),
    slowRetryMs: num(10, 3_600_000).prefault(d.slowRetryMs),
  })
    .superRefine((r, ctx) => {
      const earliest = r.stableMarginSeconds * (1 + r.jitterRatio);
      if (earliest > STABLE_ROTATION_WINDOW_S) {
        ctx.addIssue({
          code: "custom",
          path: ["stableMarginSeconds"],
          message:
            `with jitterRatio ${r.jitterRatio} a stable-token refresh could start ${earliest} s before ` +
            "expiry, before WeChat's last-300-s rotation window; keep stableMarginSeconds × (1 + jitterRatio) ≤ 300 " +
            `(at most ${Math.floor(STABLE_ROTATION_WINDOW_S / (1 + r.jitterRatio))} s with this jitterRatio)`,
        });
      }
      if (r.retryMaxMs < r.retryInitialMs)
        ctx.addIssue({
          code: "custom",
          path: ["retryMaxMs"],
          message: "must not be below retryInitialMs",
        });
    }, ONLY_WHEN_VALID)
    .transform(
      (r): RefreshPolicy => ({
        marginMs: r.marginSeconds * 1000,
        stableMarginMs: r.stableMarginSeconds * 1000,
        maxMarginRatio: d.maxMarginRatio,
        jitterRatio: r.jitterRatio,
        minRemainingMs: r.minRemainingSeconds * 1000,
        ticketMinRemainingMs: d.ticketMinRemainingMs,
        retryInitialMs: r.retryInitialMs,
        retryMaxMs: r.retryMaxMs,
        slowRetryMs: r.slowRetryMs,
      }),
    );
}
