import { type Clock, systemClock } from "../shared/clock.js";
import { chinaDayStart, DAY_MS, nextChinaDay } from "./china-day.js";
import {
  BudgetTable,
  checkApp,
  checkNow,
  FORCE_REFRESH_GAP_MS,
  QUOTA_ENDPOINTS,
  type QuotaBudgets,
  type QuotaDecision,
  type QuotaEndpoint,
  type QuotaLedger,
  type QuotaUsage,
  reportedBudget,
} from "./quota-ledger.js";

export interface MemoryQuotaLedgerOptions {
  budgets?: QuotaBudgets;
  /** Supplies `now` when a caller leaves it out. */
  clock?: Clock;
  /** Minimum gap between allowed force refreshes (default 30 s). */
  forceGapMs?: number;
}

interface AppState {
  /** China day start → endpoint → count. Only today and yesterday are kept. */
  counts: Map<number, Map<QuotaEndpoint, number>>;
  /** Endpoint → epoch ms the 45009 block ends. */
  blocks: Map<QuotaEndpoint, number>;
  /** When the last allowed force refresh was taken. */
  lastForce?: number;
}

/**
 * The ledger of a single node: the same decisions as RedisQuotaLedger, held
 * in memory (and lost on restart).
 */
export class MemoryQuotaLedger implements QuotaLedger {
  readonly #budgets: BudgetTable;
  readonly #clock: Clock;
  readonly #forceGapMs: number;
  readonly #apps = new Map<string, AppState>();
  #closed = false;

  constructor(o: MemoryQuotaLedgerOptions = {}) {
    this.#budgets = new BudgetTable(o.budgets);
    this.#clock = o.clock ?? systemClock;
    this.#forceGapMs = o.forceGapMs ?? FORCE_REFRESH_GAP_MS;
  }

  async take(
    app: string,
    endpoint: QuotaEndpoint,
    now = this.#clock.now(),
  ): Promise<QuotaDecision> {
    const state = this.#state(app, now);
    const counts = todays(state, now);
    const budget = this.#budgets.budget(app, endpoint);
    const used = counts.get(endpoint) ?? 0;
    const reported = reportedBudget(budget);
    const force = endpoint === "force_refresh";

    const blockedUntil = state.blocks.get(endpoint);
    if (blockedUntil !== undefined && blockedUntil > now)
      return { allowed: false, reason: "blocked", used, budget: reported, retryAt: blockedUntil };
    if (budget !== null && used >= budget)
      return {
        allowed: false,
        reason: force ? "force_daily" : "budget",
        used,
        budget: reported,
        retryAt: nextChinaDay(now),
      };
    if (force && state.lastForce !== undefined && now < state.lastForce + this.#forceGapMs)
      return {
        allowed: false,
        reason: "force_gap",
        used,
        budget: reported,
        retryAt: state.lastForce + this.#forceGapMs,
      };

    counts.set(endpoint, used + 1);
    if (force) state.lastForce = now;
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
    state.counts.delete(chinaDayStart(now));
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
      state = { counts: new Map(), blocks: new Map() };
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
