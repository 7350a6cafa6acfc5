import { LRUCache } from "lru-cache";
import type { Clock } from "../shared/clock.js";
import { TokenBucket } from "../shared/token-bucket.js";

export interface ReportBudgetOptions {
  /** Refreshes reports may cause at once per credential. */
  readonly burst: number;
  /** Then one more per this long. */
  readonly refillMs: number;
}

export const DEFAULT_REPORT_BUDGET: ReportBudgetOptions = Object.freeze({
  burst: 3,
  refillMs: 5 * 60_000,
});

/**
 * How many refreshes InvalidateToken reports may cause, per credential: a
 * small burst refilled slowly. The first report about a token always
 * refreshes, however young the token (another party may really have rotated
 * it); a client looping reports with each token it gets is held to one fetch
 * per refill. One refill matches WeChat's 5-minute overlap: a token really
 * rotated away by someone else is replaced before the old one stops working.
 * Per process: replicas each keep their own.
 */
export class ReportBudget {
  // Bounded: reports about millions of users' tokens must not grow memory. An
  // evicted bucket (not reported on for a long while) starts full again.
  readonly #buckets = new LRUCache<string, TokenBucket>({ max: 100_000 });

  constructor(
    private readonly o: ReportBudgetOptions,
    private readonly clock: Clock,
  ) {}

  /** Takes one refresh for credential `id`: 0 when taken, else ms until one is available. */
  take(id: string): number {
    const now = this.clock.now();
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(1000 / this.o.refillMs, this.o.burst, now);
      this.#buckets.set(id, bucket);
    }
    return bucket.take(now);
  }
}
