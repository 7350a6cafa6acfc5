import type { UpstreamClients } from "../core/kind.js";
import type { DueQueue } from "../core/ports/due-queue.js";
import type { RefreshLock } from "../core/ports/refresh-lock.js";
import type { TokenStore } from "../core/ports/token-store.js";
import type { UpstreamGate } from "../core/ports/upstream-gate.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AppRegistry } from "./app.js";
import type { RefreshEvents } from "./refresh-events.js";
import type { RefreshPolicy } from "./refresh-policy.js";
import type { ReportBudgetOptions } from "./report-budget.js";

export interface TokenManagerOptions {
  apps: AppRegistry;
  store: TokenStore;
  /** The upstream clients of the credential families (see core/kind.ts UpstreamClients). */
  upstreams: UpstreamClients;
  /** Quota, circuit breakers and retries around every upstream call. */
  gate: UpstreamGate;
  /** The cluster-wide refresh lock (store/memory's LocalRefreshLock on one node). */
  lock: RefreshLock;
  /** Where proactive refreshes are planned (store/memory's LocalDueQueue on one node). */
  dueQueue: DueQueue;
  policy: RefreshPolicy;
  logger: Logger;
  clock?: Clock;
  /** Randomness in [0, 1) for retry backoff; injectable so tests are deterministic. */
  random?: () => number;
  /** Refresh-time jitter per credential version; deterministic by default (see versionJitter). */
  jitter?: (id: string, version: number) => number;
  /** How long, in all, to wait for other replicas holding a credential's refresh lock. */
  lockWaitMs?: number;
  /** Observers for metrics and alerts. */
  events?: RefreshEvents;
  /** Refreshes reports may cause per credential (DEFAULT_REPORT_BUDGET when absent). */
  reportBudget?: ReportBudgetOptions;
  /** Users' credentials held in L1 at most (DEFAULT_MAX_SUBJECT_ENTRIES when absent). */
  maxSubjectEntries?: number;
}
