import type { RedisClient } from "../store/redis/connection.js";
import type { QuotaKeys } from "./quota-keys.js";
import {
  type Budget,
  type BudgetTable,
  checkGroup,
  type QuotaDecision,
  type QuotaEndpoint,
  type QuotaPurpose,
  refusalOf,
  reportedBudget,
} from "./quota-ledger.js";
import { BLOCK_MEMORY_MS, endpointWindow, type Window, windowedBlockEnd } from "./windows.js";

/** Window counters outlive their window by this much (clock skew between broker and Redis). */
const KEEP_AFTER_WINDOW_MS = 60 * 1000;

type Command = <T>(what: string, run: () => Promise<T>) => Promise<T>;

/**
 * RedisQuotaLedger's windowed endpoints (WeCom's per-hour limits): an app's
 * counter and, for a group (a corp), the group's, with the same scripts as
 * the daily counters (take-quota-3.lua, block-quota-1.lua).
 */
export class RedisWindows {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: QuotaKeys,
    private readonly budgets: BudgetTable,
    private readonly command: Command,
  ) {}

  /**
   * A windowed endpoint: the app's window, then the group's, each one run of
   * the same script (one slot each: an app's and a group's keys hash apart,
   * so one script cannot touch both in Redis Cluster). When the group
   * refuses, the app's count is given back.
   */
  async take(
    app: string,
    endpoint: QuotaEndpoint,
    now: number,
    purpose: QuotaPurpose,
    group: string | undefined,
  ): Promise<QuotaDecision> {
    checkGroup(group);
    const window = endpointWindow(endpoint, now);
    const appCounter = this.keys.windowCount(app, window);
    const mine = await this.#takeIn(appCounter, this.keys.block(app, endpoint), window, now, {
      effective: this.budgets.effective(app, endpoint, purpose),
      full: this.budgets.budget(app, endpoint),
    });
    if (!mine.allowed || group === undefined) return mine;
    const theirs = await this.#takeIn(
      this.keys.groupWindowCount(group, window),
      this.keys.groupBlock(group, endpoint),
      window,
      now,
      {
        effective: this.budgets.effectiveForGroup(group, endpoint, purpose),
        full: this.budgets.groupBudget(group, endpoint),
      },
    );
    if (theirs.allowed) return mine;
    await this.command("give back", () => this.client.decr(appCounter));
    return { ...theirs, group };
  }

  async #takeIn(
    counter: string,
    block: string,
    window: Window,
    now: number,
    budgets: { effective: Budget; full: Budget },
  ): Promise<QuotaDecision> {
    const reply = await this.command("take", () =>
      this.client.takeQuota(
        counter,
        block,
        // Never read: the gap is 0. Any key of the same slot will do.
        counter,
        String(now),
        String(budgets.effective ?? -1),
        String(window.end),
        String(window.end - now + KEEP_AFTER_WINDOW_MS),
        "0",
      ),
    );
    const [allowed, reason, used, retryAt] = Array.isArray(reply) ? reply : [];
    if (typeof used !== "number" || typeof retryAt !== "number")
      throw new Error("take-quota-3.lua returned an unexpected reply");
    const budget = reportedBudget(budgets.effective);
    if (allowed === 1) return { allowed: true, used, budget, window: window.period };
    return {
      allowed: false,
      reason: reason === "blocked" ? "blocked" : refusalOf(used, budgets.full),
      used,
      budget,
      retryAt,
      window: window.period,
    };
  }

  /** A 45009 (or 45033): the group's block when there is a group, else the app's (windows.ts). */
  async block(
    app: string,
    endpoint: QuotaEndpoint,
    now: number,
    group: string | undefined,
  ): Promise<void> {
    checkGroup(group);
    const key =
      group === undefined ? this.keys.block(app, endpoint) : this.keys.groupBlock(group, endpoint);
    // Read, then set: two replicas hearing 45009 at once both see no
    // running block, and both set a minute; the script keeps the later end.
    const previous = Number((await this.command("read", () => this.client.get(key))) ?? 0);
    const until = windowedBlockEnd(previous, now);
    await this.command("block", () =>
      this.client.blockQuota(key, String(until), String(until - now + BLOCK_MEMORY_MS)),
    );
  }
}
