import { APP_ID_PATTERN } from "../core/credential.js";
/**
 * The quota ledger: the broker's own count of its upstream calls per app,
 * endpoint and China day (see china-day.ts). It refuses a call beyond a
 * configured budget kept below WeChat's limit, refuses an endpoint WeChat
 * answered 45009 for until the next China day, and gates stable-token force
 * refreshes (at least 30 s apart, 20 a day).
 *
 * It only counts and decides. What a refusal or a ledger outage means for a
 * caller (the broker fails open when the ledger's store is unreachable) is
 * the caller's policy.
 */

export const QUOTA_ENDPOINTS = [
  "/cgi-bin/token",
  "/cgi-bin/stable_token",
  "/cgi-bin/ticket/getticket",
  "force_refresh",
  "clear_quota",
] as const;

/**
 * An upstream endpoint with a daily quota, or "force_refresh": stable_token
 * calls with `force_refresh: true`, which have a quota of their own (20 a
 * day, 30 s apart). A force call is also a stable_token call; a caller that
 * meters both takes both.
 */
export type QuotaEndpoint = (typeof QUOTA_ENDPOINTS)[number];

/**
 * Who asks for a call: "report" for refreshes caused by InvalidateToken, which
 * may not use the share of the budget kept for scheduled refreshes.
 */
export type QuotaPurpose = "any" | "report";

/** "reserved": a report's share is used; the rest of the budget is kept for scheduled refreshes. */
export type QuotaRefusal =
  | "budget"
  | "blocked"
  | "force_gap"
  | "force_daily"
  | "clear_gap"
  | "reserved";

export interface QuotaDecision {
  allowed: boolean;
  /** Why the call was refused; absent when allowed. */
  reason?: QuotaRefusal;
  /** Today's count for the endpoint, including this call when it was allowed. */
  used: number;
  /** Today's budget; `Infinity` when the endpoint is unmetered for the app. */
  budget: number;
  /** Epoch ms when the call may be allowed again; absent when allowed. */
  retryAt?: number;
}

export interface QuotaUsage {
  endpoint: QuotaEndpoint;
  used: number;
  /** `Infinity` when unmetered. */
  budget: number;
  /** Epoch ms the 45009 block ends; absent when the endpoint is not blocked. */
  blockedUntil?: number;
}

export interface QuotaLedger {
  /** Atomically checks the budget and the 45009 block, and if allowed counts one call. */
  take(
    app: string,
    endpoint: QuotaEndpoint,
    now: number,
    purpose?: QuotaPurpose,
  ): Promise<QuotaDecision>;
  /** WeChat said 45009 for this endpoint: block it until the next China day (00:00 UTC+8). */
  blockUntilReset(app: string, endpoint: QuotaEndpoint, now: number): Promise<void>;
  /** Usage for status/metrics: today's count, budget, blocked-until, for every endpoint. */
  usage(app: string, now: number): Promise<QuotaUsage[]>;
  /** After an audited quota clear: zero today's counters (not clear_quota's own) and lift blocks for the app. */
  reset(app: string, now: number): Promise<void>;
  close(): Promise<void>;
}

/** A daily budget: a call count, or `null` for unmetered (`undefined` = not set here). */
export type Budget = number | null;
export type EndpointBudgets = Partial<Record<QuotaEndpoint, Budget>>;

export interface QuotaBudgets {
  /** Replaces DEFAULT_BUDGETS per endpoint. */
  defaults?: EndpointBudgets;
  /** Per app id, replaces the default per endpoint. */
  apps?: Readonly<Record<string, EndpointBudgets>>;
  /**
   * The share of each metered endpoint's daily budget that refreshes caused
   * by reports (InvalidateToken) may not use, kept for scheduled refreshes
   * (default 0.2).
   */
  scheduledReserve?: number;
}

/**
 * Below WeChat's limits (wechat-api-facts §1-§3): /cgi-bin/token allows 2000
 * a day to an official account (10000 to a mini program: raise it per app);
 * stable_token 500000 a day; getticket's quota is unpublished, so this one is
 * a guess on the safe side; force refreshes are 20 a day, all of them.
 */
export const DEFAULT_BUDGETS: Readonly<Record<QuotaEndpoint, Budget>> = {
  "/cgi-bin/token": 1800,
  "/cgi-bin/stable_token": 400_000,
  "/cgi-bin/ticket/getticket": 1000,
  force_refresh: 20,
  // WeChat allows 10 clears a month, console clears included: a few a day at most.
  clear_quota: 3,
};

/** Consecutive allowed force refreshes must be at least this far apart (WeChat: 30 s). */
export const FORCE_REFRESH_GAP_MS = 30_000;

/**
 * Consecutive allowed quota clears must be at least this far apart: a clear
 * zeroes every counter, so a second one minutes later only burns one of the
 * month's 10.
 */
export const CLEAR_QUOTA_GAP_MS = 10 * 60_000;

export const DEFAULT_SCHEDULED_RESERVE = 0.2;

/** Endpoints with a minimum gap between allowed calls, and the refusal a gap gives. */
export const GAPPED: Partial<Record<QuotaEndpoint, "force_gap" | "clear_gap">> = {
  force_refresh: "force_gap",
  clear_quota: "clear_gap",
};

/** Endpoints a quota clear does not zero: clear_quota counts the clears themselves. */
export const NOT_CLEARED: ReadonlySet<QuotaEndpoint> = new Set(["clear_quota"]);

/** Resolves budgets: per-app override, then configured default, then DEFAULT_BUDGETS. */
export class BudgetTable {
  readonly #budgets: QuotaBudgets;

  constructor(budgets: QuotaBudgets = {}) {
    checkTable("defaults", budgets.defaults);
    for (const [app, table] of Object.entries(budgets.apps ?? {})) checkTable(`apps.${app}`, table);
    const reserve = budgets.scheduledReserve;
    if (reserve !== undefined && !(reserve >= 0 && reserve < 1))
      throw new TypeError("quota scheduledReserve: expected a share from 0 to below 1");
    this.#budgets = budgets;
  }

  /**
   * The budget that applies to a call: reports may use all but the reserved
   * share of a WeChat endpoint's budget (force refreshes and clears are
   * operators' calls, not reports).
   */
  effective(app: string, endpoint: QuotaEndpoint, purpose: QuotaPurpose = "any"): Budget {
    const budget = this.budget(app, endpoint);
    if (purpose === "any" || budget === null || GAPPED[endpoint]) return budget;
    const reserve = this.#budgets.scheduledReserve ?? DEFAULT_SCHEDULED_RESERVE;
    return Math.floor(budget * (1 - reserve));
  }

  /** The daily budget of `endpoint` for `app`; `null` when unmetered. */
  budget(app: string, endpoint: QuotaEndpoint): Budget {
    const own = this.#budgets.apps?.[app]?.[endpoint];
    if (own !== undefined) return own;
    const configured = this.#budgets.defaults?.[endpoint];
    if (configured !== undefined) return configured;
    return DEFAULT_BUDGETS[endpoint];
  }
}

function checkTable(where: string, table: EndpointBudgets | undefined): void {
  for (const [endpoint, budget] of Object.entries(table ?? {})) {
    if (!isQuotaEndpoint(endpoint))
      throw new TypeError(`quota budgets.${where}: unknown endpoint '${endpoint}'`);
    if (budget !== undefined && budget !== null && !(Number.isSafeInteger(budget) && budget >= 0))
      throw new TypeError(
        `quota budgets.${where}['${endpoint}']: expected a whole number ≥ 0 or null`,
      );
  }
}

export function isQuotaEndpoint(s: string): s is QuotaEndpoint {
  return (QUOTA_ENDPOINTS as readonly string[]).includes(s);
}

/** Why a spent budget refused a call: the reports' share, while the whole budget is not spent. */
export function refusalOf(used: number, full: Budget): "budget" | "reserved" {
  return full === null || used < full ? "reserved" : "budget";
}

/** `null` (unmetered) as it appears in decisions and usage. */
export function reportedBudget(budget: Budget): number {
  return budget ?? Number.POSITIVE_INFINITY;
}

/** App ids go into Redis keys: the broker's id pattern, so no ':', '{' or '}'. */
export function checkApp(app: string): void {
  if (!APP_ID_PATTERN.test(app))
    throw new TypeError("quota app id: 1-64 characters, letters, digits, '.', '_' or '-'");
}

export function checkNow(now: number): void {
  if (!Number.isSafeInteger(now) || now < 0)
    throw new TypeError("quota time: expected epoch milliseconds");
}
