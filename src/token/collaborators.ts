import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { CredentialUpdate } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import type { CredentialCache } from "./credential-cache.js";
import { loadCredential } from "./credential-loader.js";
import { Invalidation } from "./invalidation.js";
import { KindFetcher, type ParentAccess } from "./kind-fetcher.js";
import { RefreshSchedule } from "./refresh-schedule.js";
import { Refresher } from "./refresher.js";
import { DEFAULT_REPORT_BUDGET, ReportBudget } from "./report-budget.js";
import type { Resolved, RulesBook } from "./rules-book.js";
import { StoreFollower } from "./store-follower.js";
import type { TokenManagerOptions } from "./token-manager-options.js";

/** What the façade lends its collaborators: its cache, lifecycle and the calls they make back. */
export interface FacadeHooks {
  readonly clock: Clock;
  readonly jitter: (id: string, version: number) => number;
  readonly rules: RulesBook;
  readonly cache: CredentialCache;
  /** Aborted when the manager closes. */
  readonly signal: AbortSignal;
  get: ParentAccess["get"];
  reportStale: ParentAccess["reportStale"];
  /** A credential as the store holds it: to L1, the schedule and watchers. */
  adopt(update: CredentialUpdate): void;
  /** Keeps a credential in L1 and plans its refresh. */
  remember(key: CredentialKey, credential: StoredCredential): void;
}

export interface Collaborators {
  readonly refresher: Refresher;
  readonly schedule: RefreshSchedule;
  readonly invalidation: Invalidation;
  readonly follower: StoreFollower;
  readonly load: (
    r: Resolved,
    key: CredentialKey,
    signal: AbortSignal,
  ) => Promise<StoredCredential>;
}

/** Builds the token core's collaborators, each with one job; none starts I/O. */
export function wireCollaborators(o: TokenManagerOptions, h: FacadeHooks): Collaborators {
  const { clock, cache } = h;
  const random = o.random ?? Math.random;
  const fetcher = new KindFetcher(o.upstreams, o.gate, {
    get: h.get,
    reportStale: h.reportStale,
    knownValues: (appId) => cache.knownValues(appId),
  });
  const refresher = new Refresher({
    store: o.store,
    fetcher,
    clock,
    policy: o.policy,
    logger: o.logger,
    lock: o.lock,
    lockWaitMs: o.lockWaitMs ?? 35_000,
    signal: h.signal,
    localCredential: (key) => cache.get(key),
    ...(o.events ? { events: o.events } : {}),
    // Fetched while the store was unreachable: held here, written back on resync.
    onLocalWrite: h.adopt,
  });
  const schedule = new RefreshSchedule({
    rules: h.rules,
    refresher,
    store: o.store,
    queue: o.dueQueue,
    clock,
    policy: o.policy,
    jitter: h.jitter,
    random,
    logger: o.logger,
    onNewer: h.remember,
  });
  const loaderDeps = {
    store: o.store,
    cache,
    refresher,
    clock,
    logger: o.logger,
    remember: h.remember,
  };
  const load = (r: Resolved, key: CredentialKey, signal: AbortSignal) =>
    loadCredential(loaderDeps, r, key, signal);
  const invalidation = new Invalidation({
    store: o.store,
    cache,
    refresher,
    budget: new ReportBudget(o.reportBudget ?? DEFAULT_REPORT_BUDGET, clock),
    clock,
    policy: o.policy,
    logger: o.logger,
    events: o.events,
    remember: h.remember,
    load,
  });
  const follower = new StoreFollower({
    store: o.store,
    cache,
    clock,
    policy: o.policy,
    random,
    logger: o.logger,
    signal: h.signal,
    adopt: h.adopt,
  });
  return { refresher, schedule, invalidation, follower, load };
}
