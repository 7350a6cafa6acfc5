import { type Clock, systemClock } from "../shared/clock.js";
import { chinaDayStart, DAY_MS, nextChinaDay } from "./china-day.js";
import {
  BudgetTable,
  CLEAR_QUOTA_GAP_MS,
  checkApp,
  checkNow,
  FORCE_REFRESH_GAP_MS,
  GAPPED,
  NOT_CLEARED,
  QUOTA_ENDPOINTS,
  type QuotaBudgets,
  type QuotaDecision,
  type QuotaEndpoint,
  type QuotaLedger,
  type QuotaPurpose,
  type QuotaUsage,
  refusalOf,
  reportedBudget,
} from "./quota-ledger.js";

export interface MemoryQuotaLedgerOptions {
  budgets?: QuotaBudgets;
  /** Supplies `now` when a caller leaves it out. */
  clock?: Clock;
  /** Minimum gap between allowed force refreshes (default 30 s). */
  forceGapMs?: number;
  /** Minimum gap between allowed quota clears (default 10 min). */
  clearGapMs?: number;
}

interface AppState {
  /** China day start → endpoint → count. Only today and yesterday are kept. */
  counts: Map<number, Map<QuotaEndpoint, number>>;
  /** Endpoint → epoch ms the 45009 block ends. */
  blocks: Map<QuotaEndpoint, number>;
  /** When the last allowed call of each gapped endpoint (force refresh, clear) was taken. */
  last: Map<QuotaEndpoint, number>;
}

/**
 * The ledger of a single node: the same decisions as RedisQuotaLedger, held
 * in memory (and lost on restart).
 */
export class MemoryQuotaLedger implements QuotaLedger {
  readonly #budgets: BudgetTable;
  readonly #clock: Clock;
  readonly #gapMs: ReadonlyMap<QuotaEndpoint, number>;
  readonly #apps = new Map<string, AppState>();
  #closed = false;

  constructor(o: MemoryQuotaLedgerOptions = {}) {
    this.#budgets = new BudgetTable(o.budgets);
    this.#clock = o.clock ?? systemClock;
    this.#gapMs = new Map<QuotaEndpoint, number>([
      ["force_refresh", o.forceGapMs ?? FORCE_REFRESH_GAP_MS],
      ["clear_quota", o.clearGapMs ?? CLEAR_QUOTA_GAP_MS],
    ]);
  }

  async take(
    app: string,
    endpoint: QuotaEndpoint,
    now = this.#clock.now(),
    purpose: QuotaPurpose = "any",
  ): Promise<QuotaDecision> {
    const state = this.#state(app, now);
    const counts = todays(state, now);
    const budget = this.#budgets.effective(app, endpoint, purpose);
    const used = counts.get(endpoint) ?? 0;
    const reported = reportedBudget(budget);
    const force = endpoint === "force_refresh";
    const gapRefusal = GAPPED[endpoint];
    const gapMs = this.#gapMs.get(endpoint) ?? 0;
    const last = state.last.get(endpoint);

    const blockedUntil = state.blocks.get(endpoint);
    if (blockedUntil !== undefined && blockedUntil > now)
      return { allowed: false, reason: "blocked", used, budget: reported, retryAt: blockedUntil };
    if (budget !== null && used >= budget)
      return {
        allowed: false,
        reason: force ? "force_daily" : refusalOf(used, this.#budgets.budget(app, endpoint)),
        used,
        budget: reported,
        retryAt: nextChinaDay(now),
      };
    if (gapRefusal && last !== undefined && now < last + gapMs)
      return {
        allowed: false,
        reason: gapRefusal,
        used,
        budget: reported,
        retryAt: last + gapMs,
      };

    counts.set(endpoint, used + 1);
    if (gapRefusal) state.last.set(endpoint, now);
    return { allowed: true, used: used + 1, budget: reported };
  }

  async blockUntilReset(app: string, endpoint: QuotaEndpoint, now = this.#clock.now()) {
    const state = this.#state(app, now);
    const until = nextChinaDay(now);
    state.blocks.set(endpoint, Math.max(until, state.blocks.get(endpoint) ?? 0));
  }

  async usage(app: string, now = this.#clock.now()): Promise<QuotaUsage[]> {
    const state = this.#state(app, now);
    const counts = todays(state, now);
    return QUOTA_ENDPOINTS.map((endpoint) => {
      const blockedUntil = state.blocks.get(endpoint);
      return {
        endpoint,
        used: counts.get(endpoint) ?? 0,
        budget: reportedBudget(this.#budgets.budget(app, endpoint)),
        ...(blockedUntil !== undefined && blockedUntil > now ? { blockedUntil } : {}),
      };
    });
  }

  async reset(app: string, now = this.#clock.now()): Promise<void> {
    const state = this.#state(app, now);
    const counts = state.counts.get(chinaDayStart(now));
    for (const endpoint of QUOTA_ENDPOINTS)
      if (!NOT_CLEARED.has(endpoint)) counts?.delete(endpoint);
    state.blocks.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #state(app: string, now: number): AppState {
    if (this.#closed) throw new Error("the quota ledger is closed");
    checkApp(app);
    checkNow(now);
    let state = this.#apps.get(app);
    if (!state) {
      state = { counts: new Map(), blocks: new Map(), last: new Map() };
      this.#apps.set(app, state);
    }
    return state;
  }
}

/** Today's counters of an app, dropping days before yesterday (as Redis expires them). */
function todays(state: AppState, now: number): Map<QuotaEndpoint, number> {
  const day = chinaDayStart(now);
  for (const old of state.counts.keys()) if (old < day - DAY_MS) state.counts.delete(old);
  let counts = state.counts.get(day);
  if (!counts) {
    counts = new Map();
    state.counts.set(day, counts);
  }
  return counts;
}
