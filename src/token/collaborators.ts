import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { CredentialUpdate } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import type { CredentialCache } from "./credential-cache.js";
import { CredentialIntake } from "./credential-intake.js";
import { loadCredential } from "./credential-loader.js";
import { Grants } from "./grants.js";
import { Invalidation } from "./invalidation.js";
import { KindFetcher, type ParentAccess } from "./kind-fetcher.js";
import { RefreshSchedule } from "./refresh-schedule.js";
import { Refresher } from "./refresher.js";
import { DEFAULT_REPORT_BUDGET, ReportBudget } from "./report-budget.js";
import type { Resolved, RulesBook } from "./rules-book.js";
import { StoreFollower } from "./store-follower.js";
import type { TokenManagerOptions } from "./token-manager-options.js";
import type { WatchHub } from "./watch-hub.js";

/** What the façade lends its collaborators: its cache, watches, lifecycle and the calls they make back. */
export interface FacadeHooks {
  readonly clock: Clock;
  readonly jitter: (id: string, version: number) => number;
  readonly rules: RulesBook;
  readonly cache: CredentialCache;
  /** The open watches, fed by the intake. */
  readonly watchers: WatchHub<StoredCredential>;
  /** Aborted when the manager closes. */
  readonly signal: AbortSignal;
  get: ParentAccess["get"];
  reportStale: ParentAccess["reportStale"];
}

export interface Collaborators {
  /** Takes every credential learnt of into L1, the schedule and watchers. */
  readonly intake: CredentialIntake;
  readonly refresher: Refresher;
  readonly schedule: RefreshSchedule;
  readonly invalidation: Invalidation;
  readonly follower: StoreFollower;
  /** Subject kinds' grants: stored from code exchanges, forgotten, voided. */
  readonly grants: Grants;
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
  // Bound late: the intake needs the schedule, which needs the intake's `remember`.
  const adopt = (u: CredentialUpdate) => intake.adopt(u);
  const remember = (key: CredentialKey, c: StoredCredential) => intake.remember(key, c);
  const fetcher = new KindFetcher(
    o.upstreams,
    o.gate,
    {
      get: h.get,
      reportStale: h.reportStale,
      knownValues: (appId) => cache.knownValues(appId),
    },
    () => clock.now(),
  );
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
    onLocalWrite: adopt,
    onGrantVoid: (key: CredentialKey, current: StoredCredential): Promise<void> =>
      grants.voided(key, current),
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
    onNewer: remember,
  });
  const intake = new CredentialIntake({ apps: o.apps, cache, watchers: h.watchers, schedule });
  const loaderDeps = {
    store: o.store,
    cache,
    refresher,
    clock,
    logger: o.logger,
    remember,
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
    remember,
    load,
  });
  const grants: Grants = new Grants({
    store: o.store,
    refresher,
    rules: h.rules,
    cache,
    watchers: h.watchers,
    logger: o.logger,
    remember,
  });
  const follower = new StoreFollower({
    store: o.store,
    cache,
    clock,
    policy: o.policy,
    random,
    logger: o.logger,
    signal: h.signal,
    adopt,
    dropped: (key) => grants.dropped(key),
  });
  return { intake, refresher, schedule, invalidation, follower, load, grants };
}
