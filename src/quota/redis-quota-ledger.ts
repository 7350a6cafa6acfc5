import type { ClientContext, RedisKey, Result } from "ioredis";
import { type Clock, systemClock } from "../shared/clock.js";
import { StoreUnavailableError } from "../shared/errors.js";
import { quitOrDisconnect, type RedisClient } from "../store/redis/connection.js";
import { defineLuaScripts } from "../store/redis/lua-loader.js";
import { nextChinaDay } from "./china-day.js";
import { QuotaKeys } from "./quota-keys.js";
import {
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
  type QuotaRefusal,
  type QuotaUsage,
  refusalOf,
  reportedBudget,
  type UsageQuery,
  WINDOWED,
} from "./quota-ledger.js";
import { RedisWindows } from "./redis-windows.js";
import { endpointWindow, type Window } from "./windows.js";

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    /** src/store/redis/lua/quota/take-quota-3.lua; call it through RedisQuotaLedger.take. */
    takeQuota(
      count: RedisKey,
      block: RedisKey,
      lastForce: RedisKey,
      ...argv: string[]
    ): Result<unknown, Context>;
    /** src/store/redis/lua/quota/block-quota-1.lua; call it through RedisQuotaLedger.blockUntilReset. */
    blockQuota(block: RedisKey, ...argv: string[]): Result<unknown, Context>;
  }
}

/** take-quota-3.lua's reasons other than a spent budget and a gap (see take). */
const REFUSAL = { blocked: "blocked", budget: "budget", gap: "gap" } as const;

/** Counters and blocks outlive their day by this much (clock skew between broker and Redis). */
const KEEP_AFTER_DAY_MS = 60 * 60 * 1000;

export interface RedisQuotaLedgerOptions {
  client: RedisClient;
  /** The broker's key prefix (the one RedisKeys takes). */
  prefix: string;
  budgets?: QuotaBudgets;
  /** Supplies `now` when a caller leaves it out. */
  clock?: Clock;
  /** Minimum gap between allowed force refreshes (default 30 s). */
  forceGapMs?: number;
  /** Minimum gap between allowed quota clears (default 10 min). */
  clearGapMs?: number;
  /** Whether close() closes `client` (default true); false when it is shared. */
  ownsClient?: boolean;
}

/**
 * The ledger shared by every replica through Redis. `take` is one Lua script
 * (take-quota-3.lua), so concurrent replicas never overspend a budget; the
 * time always comes from the caller. Rejects with StoreUnavailableError when
 * Redis cannot be reached. A take that timed out may still have run once
 * Redis answered again, so a rejected take can have been counted: the
 * ledger errs on the side of counting, never of overspending.
 */
export class RedisQuotaLedger implements QuotaLedger {
  readonly #client: RedisClient;
  readonly #keys: QuotaKeys;
  readonly #budgets: BudgetTable;
  readonly #clock: Clock;
  readonly #forceGapMs: number;
  readonly #clearGapMs: number;
  readonly #ownsClient: boolean;
  readonly #windows: RedisWindows;
  #closing: Promise<void> | undefined;

  constructor(o: RedisQuotaLedgerOptions) {
    this.#client = o.client;
    this.#keys = new QuotaKeys(o.prefix);
    this.#budgets = new BudgetTable(o.budgets);
    this.#clock = o.clock ?? systemClock;
    this.#forceGapMs = o.forceGapMs ?? FORCE_REFRESH_GAP_MS;
    this.#clearGapMs = o.clearGapMs ?? CLEAR_QUOTA_GAP_MS;
    this.#ownsClient = o.ownsClient ?? true;
    defineLuaScripts(this.#client, "quota", { takeQuota: 3, blockQuota: 1 });
    this.#windows = new RedisWindows(this.#client, this.#keys, this.#budgets, (what, run) =>
      this.#command(what, run),
    );
  }

  async take(
    app: string,
    endpoint: QuotaEndpoint,
    now = this.#clock.now(),
    purpose: QuotaPurpose = "any",
    group?: string,
  ): Promise<QuotaDecision> {
    this.#check(app, now);
    if (WINDOWED.has(endpoint)) return this.#windows.take(app, endpoint, now, purpose, group);
    const budget = this.#budgets.effective(app, endpoint, purpose);
    const dayEnd = nextChinaDay(now);
    const gapMs =
      endpoint === "force_refresh"
        ? this.#forceGapMs
        : endpoint === "clear_quota"
          ? this.#clearGapMs
          : 0;
    const reply = await this.#command("take", () =>
      this.#client.takeQuota(
        this.#keys.count(app, endpoint, now),
        this.#keys.block(app, endpoint),
        endpoint === "clear_quota" ? this.#keys.lastClear(app) : this.#keys.lastForce(app),
        String(now),
        String(budget ?? -1),
        String(dayEnd),
        String(dayEnd - now + KEEP_AFTER_DAY_MS),
        String(gapMs),
      ),
    );
    const [allowed, reason, used, retryAt] = Array.isArray(reply) ? reply : [];
    if (typeof used !== "number" || typeof retryAt !== "number")
      throw new Error("take-quota-3.lua returned an unexpected reply");
    const reported = reportedBudget(budget);
    if (allowed === 1) return { allowed: true, used, budget: reported };
    const refusal = REFUSAL[String(reason) as keyof typeof REFUSAL];
    if (!refusal) throw new Error("take-quota-3.lua returned an unexpected reason");
    return {
      allowed: false,
      reason: this.#refusal(refusal, app, endpoint, used),
      used,
      budget: reported,
      retryAt,
    };
  }

  /** The script's reason in the ledger's words: which gap, and whose share of a spent budget. */
  #refusal(
    reason: (typeof REFUSAL)[keyof typeof REFUSAL],
    app: string,
    endpoint: QuotaEndpoint,
    used: number,
  ): QuotaRefusal {
    if (reason === "blocked") return "blocked";
    if (reason === "gap") return GAPPED[endpoint] ?? "force_gap";
    if (endpoint === "force_refresh") return "force_daily";
    return refusalOf(used, this.#budgets.budget(app, endpoint));
  }

  async blockUntilReset(
    app: string,
    endpoint: QuotaEndpoint,
    now = this.#clock.now(),
    group?: string,
  ): Promise<void> {
    this.#check(app, now);
    checkGroup(group);
    if (WINDOWED.has(endpoint)) {
      await this.#windows.block(app, endpoint, now, group);
      return;
    }
    const until = nextChinaDay(now);
    await this.#command("block", () =>
      this.#client.blockQuota(
        this.#keys.block(app, endpoint),
        String(until),
        String(until - now + KEEP_AFTER_DAY_MS),
      ),
    );
  }

  async usage(app: string, now = this.#clock.now(), query: UsageQuery = {}): Promise<QuotaUsage[]> {
    this.#check(app, now);
    const { group } = query;
    checkGroup(group);
    const endpoints = query.endpoints ?? QUOTA_ENDPOINTS;
    const windowOf = (e: QuotaEndpoint) => (WINDOWED.has(e) ? endpointWindow(e, now) : undefined);
    const keys = endpoints.flatMap((e) => {
      const w = windowOf(e);
      return [
        w ? this.#keys.windowCount(app, w) : this.#keys.count(app, e, now),
        this.#keys.block(app, e),
      ];
    });
    const values = await this.#command("read", () => this.#client.mget(keys));
    // A group's keys are in another slot: a second MGET.
    const windowed = endpoints.filter((e) => WINDOWED.has(e));
    const groupValues =
      group === undefined || windowed.length === 0
        ? []
        : await this.#command("read", () =>
            this.#client.mget(
              windowed.flatMap((e) => {
                const w = windowOf(e) as Window;
                return [this.#keys.groupWindowCount(group, w), this.#keys.groupBlock(group, e)];
              }),
            ),
          );
    return endpoints.map((endpoint, i) => {
      const budget = reportedBudget(this.#budgets.budget(app, endpoint));
      const used = Number(values[2 * i] ?? 0);
      const appBlock = Number(values[2 * i + 1] ?? 0);
      const w = windowOf(endpoint);
      if (!w)
        return { endpoint, used, budget, ...(appBlock > now ? { blockedUntil: appBlock } : {}) };
      const g = windowed.indexOf(endpoint);
      const groupBlock = Number(groupValues[2 * g + 1] ?? 0);
      const blockedUntil = Math.max(appBlock, groupBlock);
      return {
        endpoint,
        used,
        budget,
        window: w.period,
        ...(blockedUntil > now ? { blockedUntil } : {}),
        ...(group === undefined
          ? {}
          : {
              group: {
                id: group,
                used: Number(groupValues[2 * g] ?? 0),
                budget: reportedBudget(this.#budgets.groupBudget(group, endpoint)),
              },
            }),
      };
    });
  }

  async reset(app: string, now = this.#clock.now()): Promise<void> {
    this.#check(app, now);
    const keys = QUOTA_ENDPOINTS.filter((e) => !NOT_CLEARED.has(e)).flatMap((e) => [
      this.#keys.count(app, e, now),
      this.#keys.block(app, e),
    ]);
    // One command on one slot (the app's hash tag): atomic.
    await this.#command("reset", () => this.#client.del(keys));
  }

  close(): Promise<void> {
    this.#closing ??= this.#ownsClient ? quitOrDisconnect(this.#client) : Promise.resolve();
    return this.#closing;
  }

  #check(app: string, now: number): void {
    if (this.#closing) throw new Error("the quota ledger is closed");
    checkApp(app);
    checkNow(now);
  }

  async #command<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      // A new error without `cause`: ioredis attaches the command and its arguments.
      const message = err instanceof Error ? err.message : String(err);
      if (isUnreachable(err))
        throw new StoreUnavailableError(`Redis is unreachable (quota ${what}): ${message}`);
      throw new Error(`Redis refused the quota ${what}: ${message}`);
    }
  }
}

/**
 * Reply errors that mean "not now" rather than "never": the node is loading,
 * is a replica after a failover, or the cluster has unserved slots.
 */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err.name !== "ReplyError") return true; // timeouts, retries exhausted, closed sockets
  return TRANSIENT_REPLY.test(err.message);
}
