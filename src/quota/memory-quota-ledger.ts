import { type Clock, systemClock } from "../shared/clock.js";
import { chinaDayStart, DAY_MS, nextChinaDay } from "./china-day.js";
import {
  type Budget,
  BudgetTable,
  CLEAR_QUOTA_GAP_MS,
  checkApp,
  checkGroup,
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
  type UsageQuery,
  WINDOWED,
} from "./quota-ledger.js";
import { BLOCK_MEMORY_MS, endpointWindow, type Window, windowedBlockEnd } from "./windows.js";

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
  /** Windowed counters: "meter@windowStart" → count; past windows are dropped. */
  windows: Map<string, { end: number; count: number }>;
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
  readonly #groups = new Map<string, AppState>();
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
    group?: string,
  ): Promise<QuotaDecision> {
    const windowSpec = WINDOWED.get(endpoint);
    if (windowSpec) return this.#takeWindowed(app, endpoint, now, purpose, group);
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

  /** A windowed endpoint: the app's window, then the group's; the app's count is given back if the group refuses. */
  #takeWindowed(
    app: string,
    endpoint: QuotaEndpoint,
    now: number,
    purpose: QuotaPurpose,
    group: string | undefined,
  ): QuotaDecision {
    checkGroup(group);
    const window = endpointWindow(endpoint, now);
    const state = this.#state(app, now);
    const mine = takeIn(state, window, endpoint, now, {
      effective: this.#budgets.effective(app, endpoint, purpose),
      full: this.#budgets.budget(app, endpoint),
    });
    if (!mine.allowed || group === undefined) return mine;
    const theirs = takeIn(this.#groupState(group, now), window, endpoint, now, {
      effective: this.#budgets.effectiveForGroup(group, endpoint, purpose),
      full: this.#budgets.groupBudget(group, endpoint),
    });
    if (theirs.allowed) return mine;
    const counter = state.windows.get(`${window.meter}@${window.start}`);
    if (counter) counter.count--;
    return { ...theirs, group };
  }

  async blockUntilReset(
    app: string,
    endpoint: QuotaEndpoint,
    now = this.#clock.now(),
    group?: string,
  ) {
    checkGroup(group);
    const windowed = WINDOWED.has(endpoint);
    const state =
      windowed && group !== undefined ? this.#groupState(group, now) : this.#state(app, now);
    const previous = state.blocks.get(endpoint) ?? 0;
    const until = windowed ? windowedBlockEnd(previous, now) : nextChinaDay(now);
    state.blocks.set(endpoint, Math.max(until, previous));
  }

  async usage(app: string, now = this.#clock.now(), query: UsageQuery = {}): Promise<QuotaUsage[]> {
    checkGroup(query.group);
    const state = this.#state(app, now);
    const counts = todays(state, now);
    const groupState = query.group === undefined ? undefined : this.#groupState(query.group, now);
    return (query.endpoints ?? QUOTA_ENDPOINTS).map((endpoint) => {
      const budget = reportedBudget(this.#budgets.budget(app, endpoint));
      if (!WINDOWED.has(endpoint)) {
        const blockedUntil = state.blocks.get(endpoint);
        return {
          endpoint,
          used: counts.get(endpoint) ?? 0,
          budget,
          ...(blockedUntil !== undefined && blockedUntil > now ? { blockedUntil } : {}),
        };
      }
      const window = endpointWindow(endpoint, now);
      const blockedUntil = Math.max(
        state.blocks.get(endpoint) ?? 0,
        groupState?.blocks.get(endpoint) ?? 0,
      );
      return {
        endpoint,
        used: countIn(state, window),
        budget,
        window: window.period,
        ...(blockedUntil > now ? { blockedUntil } : {}),
        ...(query.group !== undefined && groupState
          ? {
              group: {
                id: query.group,
                used: countIn(groupState, window),
                budget: reportedBudget(this.#budgets.groupBudget(query.group, endpoint)),
              },
            }
          : {}),
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
    checkApp(app);
    return this.#stateIn(this.#apps, app, now);
  }

  /** A group's (a WeCom corp's) windows and blocks: an AppState whose day counters stay unused. */
  #groupState(group: string, now: number): AppState {
    return this.#stateIn(this.#groups, group, now);
  }

  #stateIn(states: Map<string, AppState>, id: string, now: number): AppState {
    if (this.#closed) throw new Error("the quota ledger is closed");
    checkNow(now);
    let state = states.get(id);
    if (!state) {
      state = { counts: new Map(), windows: new Map(), blocks: new Map(), last: new Map() };
      states.set(id, state);
    }
    return state;
  }
}

/** Counts one call in `state`'s window if its block and budget allow; drops ended windows. */
function takeIn(
  state: AppState,
  window: Window,
  endpoint: QuotaEndpoint,
  now: number,
  budgets: { effective: Budget; full: Budget },
): QuotaDecision {
  const budget = budgets.effective;
  for (const [key, w] of state.windows) if (w.end <= now) state.windows.delete(key);
  const key = `${window.meter}@${window.start}`;
  const counter = state.windows.get(key) ?? { end: window.end, count: 0 };
  const reported = reportedBudget(budget);
  const blockedUntil = state.blocks.get(endpoint) ?? 0;
  if (blockedUntil > now)
    return {
      allowed: false,
      reason: "blocked",
      used: counter.count,
      budget: reported,
      retryAt: blockedUntil,
      window: window.period,
    };
  if (budget !== null && counter.count >= budget)
    return {
      allowed: false,
      reason: refusalOf(counter.count, budgets.full),
      used: counter.count,
      budget: reported,
      retryAt: window.end,
      window: window.period,
    };
  counter.count++;
  state.windows.set(key, counter);
  // A windowed block's end is remembered for an hour after it (escalation).
  if (blockedUntil > 0 && blockedUntil + BLOCK_MEMORY_MS <= now) state.blocks.delete(endpoint);
  return { allowed: true, used: counter.count, budget: reported, window: window.period };
}

function countIn(state: AppState, window: Window): number {
  const counter = state.windows.get(`${window.meter}@${window.start}`);
  return counter?.count ?? 0;
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
