import { z } from "zod";
import { DEFAULT_SCHEDULED_RESERVE, QUOTA_ENDPOINTS, WINDOWED } from "../../quota/index.js";
import { num, section } from "../../shared/schema.js";

/** A daily budget: a number of calls, or null / "unmetered" for none. */
const budget = z.preprocess((v) => (v === "unmetered" ? null : v), num(0, 10_000_000).nullable());

/** Budgets per metered WeChat endpoint; an endpoint left out keeps its default. */
function budgetsSchema(endpoints: readonly string[] = QUOTA_ENDPOINTS) {
  const shape = Object.fromEntries(endpoints.map((e) => [e, budget.optional()]));
  // Not `section`: there a null value means "not set", here it means unmetered.
  return z
    .preprocess((v) => v ?? {}, z.strictObject(shape, { error: "expected a mapping" }))
    .transform((b) => b as Record<string, number | null>);
}

/** Daily budgets per WeChat endpoint, below WeChat's own limits. */
export function quotaSchema() {
  return section({
    budgets: budgetsSchema(),
    /** Per app id, replaces the budgets above (e.g. 9000 for a mini program's token). */
    apps: z.preprocess((v) => v ?? {}, z.record(z.string(), budgetsSchema())),
    /** WeCom's per-hour endpoints: what all apps of one corp may use together per window. */
    corpBudgets: budgetsSchema([...WINDOWED.keys()]),
    /** Per corpid, replaces corpBudgets. */
    corps: z.preprocess((v) => v ?? {}, z.record(z.string(), budgetsSchema([...WINDOWED.keys()]))),
    /** The share of each daily budget refreshes caused by InvalidateToken may not use; below 1, reports always keep some. */
    scheduledReserve: num(0, 0.9).prefault(DEFAULT_SCHEDULED_RESERVE),
  });
}
