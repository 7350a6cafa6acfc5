import { APP_ID_PATTERN } from "../core/credential.js";
import type {
  QuotaEndpointSpec,
  QuotaPeriod,
  QuotaRefusal,
  QuotaWindowSpec,
} from "../core/kind.js";
import { KINDS } from "../credentials/index.js";

/**
 * The quota ledger: the broker's own count of its upstream calls per app,
 * endpoint and China day (see china-day.ts), or per minute or hour for the
 * endpoints WeCom limits that way (see windows.ts), where the apps of one
 * group (a WeCom corp) also share a budget. It refuses a call beyond a
 * configured budget kept below WeChat's limit, refuses an endpoint WeChat
 * answered 45009 for until the limit resets, and gates stable-token force
 * refreshes (at least 30 s apart, 20 a day).
 *
 * It only counts and decides. What a refusal or a ledger outage means for a
 * caller (the broker fails open when the ledger's store is unreachable) is
 * the caller's policy.
 */

/** Every metered endpoint, as the registered credential kinds and account types declare them. */
const CATALOG: readonly QuotaEndpointSpec[] = KINDS.quotaEndpoints();

export const QUOTA_ENDPOINTS: readonly string[] = CATALOG.map((e) => e.name);

/** The endpoints counted per minute or hour (WeCom's), with their windows. */
export const WINDOWED: ReadonlyMap<QuotaEndpoint, QuotaWindowSpec> = new Map(
  CATALOG.flatMap((e) => (e.window ? [[e.name, e.window] as const] : [])),
);

function gapOf(endpoint: string): number {
  const gap = CATALOG.find((e) => e.name === endpoint)?.gap?.ms;
  if (gap === undefined) throw new Error(`quota: no registered endpoint '${endpoint}' with a gap`);
  return gap;
}

/**
 * An upstream endpoint with a daily quota, or "force_refresh": stable_token
 * calls with `force_refresh: true`, which have a quota of their own (20 a
 * day, 30 s apart). A force call is also a stable_token call; a caller that
 * meters both takes both.
 */
export type QuotaEndpoint = string;

/**
 * Who asks for a call: "report" for refreshes caused by InvalidateToken, which
 * may not use the share of the budget kept for scheduled refreshes.
 */
export type QuotaPurpose = "any" | "report";

export type { QuotaRefusal };

export interface QuotaDecision {
  allowed: boolean;
  /** Why the call was refused; absent when allowed. */
  reason?: QuotaRefusal;
  /** The window's count (today's, or this minute's or hour's), including this call when allowed. */
  used: number;
  /** The window's budget; `Infinity` when the endpoint is unmetered for the app. */
  budget: number;
  /** Epoch ms when the call may be allowed again; absent when allowed. */
  retryAt?: number;
  /** What `used` and `budget` count over: absent for the China day. */
  window?: QuotaPeriod;
  /** Whose budget or block refused the call: the group's (a WeCom corp) rather than the app's. */
  group?: string;
}

export interface QuotaUsage {
  endpoint: QuotaEndpoint;
  used: number;
  /** `Infinity` when unmetered. */
  budget: number;
  /** Epoch ms the 45009 block ends; absent when the endpoint is not blocked. */
  blockedUntil?: number;
  /** What `used` and `budget` count over: absent for the China day. */
  window?: QuotaPeriod;
  /** The group's (a WeCom corp's) count and budget for the same window, when asked for one. */
  group?: { id: string; used: number; budget: number };
}

/** Which endpoints usage() reports, and the app's group (a WeCom corp) if it has one. */
export interface UsageQuery {
  /** Default: every endpoint of the catalog. */
  endpoints?: readonly QuotaEndpoint[];
  group?: string;
}

export interface QuotaLedger {
  /**
   * Atomically checks the budget and the 45009 block, and if allowed counts
   * one call; for a windowed endpoint with a `group`, the group's budget and
   * block too (the app's count is given back when the group refuses).
   */
  take(
    app: string,
    endpoint: QuotaEndpoint,
    now: number,
    purpose?: QuotaPurpose,
    group?: string,
  ): Promise<QuotaDecision>;
  /**
   * WeChat said 45009 for this endpoint: block it until the next China day
   * (00:00 UTC+8); a windowed endpoint for a minute, or an hour when hit again
   * within the hour (windows.ts), for the whole group when it has one.
   */
  blockUntilReset(app: string, endpoint: QuotaEndpoint, now: number, group?: string): Promise<void>;
  /** Usage for status/metrics: the window's count, budget, blocked-until, per endpoint. */
  usage(app: string, now: number, query?: UsageQuery): Promise<QuotaUsage[]>;
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
  /** Windowed endpoints' budgets per group (a WeCom corp), replacing DEFAULT_GROUP_BUDGETS. */
  groupDefaults?: EndpointBudgets;
  /** Per group id (a corpid), replaces the group default per endpoint. */
  groups?: Readonly<Record<string, EndpointBudgets>>;
  /**
   * The share of each metered endpoint's daily budget that refreshes caused
   * by reports (InvalidateToken) may not use, kept for scheduled refreshes
   * (default 0.2).
   */
  scheduledReserve?: number;
}

/** Each endpoint's default budget, as its kind declares it (below WeChat's limits, facts §1-§3, §6.2). */
export const DEFAULT_BUDGETS: Readonly<Record<QuotaEndpoint, Budget>> = Object.fromEntries(
  CATALOG.map((e) => [e.name, e.budget]),
);

/** Each windowed endpoint's default budget per group and window (a WeCom corp's apps together). */
export const DEFAULT_GROUP_BUDGETS: Readonly<Record<QuotaEndpoint, Budget>> = Object.fromEntries(
  [...WINDOWED].map(([name, w]) => [name, w.groupBudget]),
);

/** Consecutive allowed force refreshes must be at least this far apart (as the access token kind declares). */
export const FORCE_REFRESH_GAP_MS = gapOf("force_refresh");

/** Consecutive allowed quota clears must be at least this far apart (as the account types declare). */
export const CLEAR_QUOTA_GAP_MS = gapOf("clear_quota");

export const DEFAULT_SCHEDULED_RESERVE = 0.2;

/** Endpoints with a minimum gap between allowed calls, and the refusal a gap gives. */
export const GAPPED: Partial<Record<QuotaEndpoint, "force_gap" | "clear_gap">> = Object.fromEntries(
  CATALOG.flatMap((e) => (e.gap ? [[e.name, e.gap.refusal]] : [])),
);

/** Endpoints a quota clear does not zero: clear_quota counts the clears themselves. */
export const NOT_CLEARED: ReadonlySet<QuotaEndpoint> = new Set(
  CATALOG.filter((e) => e.keptOnClear).map((e) => e.name),
);

/** Each endpoint's name inside Redis keys. */
export const KEY_SEGMENTS: ReadonlyMap<QuotaEndpoint, string> = new Map(
  CATALOG.map((e) => [e.name, e.segment]),
);

/** Resolves budgets: per-app override, then configured default, then DEFAULT_BUDGETS. */
export class BudgetTable {
  readonly #budgets: QuotaBudgets;

  constructor(budgets: QuotaBudgets = {}) {
    checkTable("defaults", budgets.defaults);
    for (const [app, table] of Object.entries(budgets.apps ?? {})) checkTable(`apps.${app}`, table);
    checkTable("groupDefaults", budgets.groupDefaults, true);
    for (const [group, table] of Object.entries(budgets.groups ?? {}))
      checkTable(`groups.${group}`, table, true);
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
    return this.#reserved(this.budget(app, endpoint), endpoint, purpose);
  }

  /** As effective(), for the budget a group's apps share (windowed endpoints only). */
  effectiveForGroup(group: string, endpoint: QuotaEndpoint, purpose: QuotaPurpose = "any"): Budget {
    return this.#reserved(this.groupBudget(group, endpoint), endpoint, purpose);
  }

  #reserved(budget: Budget, endpoint: QuotaEndpoint, purpose: QuotaPurpose): Budget {
    if (purpose === "any" || budget === null || GAPPED[endpoint]) return budget;
    const reserve = this.#budgets.scheduledReserve ?? DEFAULT_SCHEDULED_RESERVE;
    return Math.floor(budget * (1 - reserve));
  }

  /** The budget per window all apps of `group` share; `null` when none (or not windowed). */
  groupBudget(group: string, endpoint: QuotaEndpoint): Budget {
    const own = this.#budgets.groups?.[group]?.[endpoint];
    if (own !== undefined) return own;
    const configured = this.#budgets.groupDefaults?.[endpoint];
    if (configured !== undefined) return configured;
    return DEFAULT_GROUP_BUDGETS[endpoint] ?? null;
  }

  /** The daily budget of `endpoint` for `app`; `null` when unmetered. */
  budget(app: string, endpoint: QuotaEndpoint): Budget {
    const own = this.#budgets.apps?.[app]?.[endpoint];
    if (own !== undefined) return own;
    const configured = this.#budgets.defaults?.[endpoint];
    if (configured !== undefined) return configured;
    const fallback = DEFAULT_BUDGETS[endpoint];
    if (fallback === undefined) throw new TypeError(`quota: unknown endpoint '${endpoint}'`);
    return fallback;
  }
}

function checkTable(where: string, table: EndpointBudgets | undefined, windowedOnly = false): void {
  for (const [endpoint, budget] of Object.entries(table ?? {})) {
    if (!isQuotaEndpoint(endpoint))
      throw new TypeError(`quota budgets.${where}: unknown endpoint '${endpoint}'`);
    if (windowedOnly && !WINDOWED.has(endpoint))
      throw new TypeError(
        `quota budgets.${where}: '${endpoint}' has no group budget (only WeCom's per-minute and per-hour endpoints do)`,
      );
    if (budget !== undefined && budget !== null && !(Number.isSafeInteger(budget) && budget >= 0))
      throw new TypeError(
        `quota budgets.${where}['${endpoint}']: expected a whole number ≥ 0 or null`,
      );
  }
}

export function isQuotaEndpoint(s: string): s is QuotaEndpoint {
  return QUOTA_ENDPOINTS.includes(s);
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

/** Group ids (corpids) go into Redis keys too: the same pattern. */
export function checkGroup(group: string | undefined): void {
  if (group !== undefined && !APP_ID_PATTERN.test(group))
    throw new TypeError("quota group id: 1-64 characters, letters, digits, '.', '_' or '-'");
}

export function checkNow(now: number): void {
  if (!Number.isSafeInteger(now) || now < 0)
    throw new TypeError("quota time: expected epoch milliseconds");
}
