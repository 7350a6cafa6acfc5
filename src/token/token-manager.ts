import { type Clock, systemClock } from "../shared/clock.js";
import {
  FailedPreconditionError,
  ShuttingDownError,
  UpstreamUnavailableError,
} from "../shared/errors.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import { raceAbort } from "../shared/race-abort.js";
import { type DueQueue, LocalDueQueue } from "../store/due-queue.js";
import { LocalRefreshLock, type RefreshLock } from "../store/refresh-lock.js";
import { isStoreUnavailable } from "../store/store-unavailable.js";
import type { CredentialUpdate, TokenStore } from "../store/token-store.js";
import { UpstreamBreakers } from "../upstream/upstream-breakers.js";
import { UpstreamGuard } from "../upstream/upstream-guard.js";
import type { WechatClient } from "../upstream/wechat-client.js";
import type { AppConfig, AppRegistry } from "./app.js";
import {
  type CredentialKey,
  type CredentialKind,
  describeKey,
  keyId,
  parseKeyId,
  type StoredCredential,
} from "./credential.js";
import { CredentialFetcher } from "./credential-fetcher.js";
import { foreignRefreshEvidence, type RefreshEvents } from "./refresh-events.js";
import {
  isServable,
  type RefreshPolicy,
  refreshAt,
  reportedExpiresAt,
  retryDelayMs,
} from "./refresh-policy.js";
import { RefreshSchedule, versionJitter } from "./refresh-schedule.js";
import { Refresher, type RefreshOutcome } from "./refresher.js";
import { DEFAULT_REPORT_BUDGET, ReportBudget, type ReportBudgetOptions } from "./report-budget.js";
import { needsReconcile, reconcileWithStore, resyncWithStore } from "./store-resync.js";
import { WatchHub } from "./watch-hub.js";

export type InvalidateOutcome =
  | "refreshed"
  | "already_replaced"
  | "joined_refresh"
  | "confirmed_current"
  | "rate_limited";

export interface InvalidateResult {
  readonly credential: StoredCredential;
  readonly outcome: InvalidateOutcome;
}

export interface InvalidateOptions {
  /** Who reported (a client id), named in logs and the foreign-fetcher alert. */
  readonly reporter?: string;
  /**
   * false: never fetch a credential the broker does not hold (the reporter
   * may not read tokens); with nothing stored the report fails instead.
   */
  readonly coldFetch?: boolean;
}

export interface WatchEvent {
  readonly credential: StoredCredential;
  /** Set on every event after the first: until when the replaced value works. */
  readonly previousValidUntil?: number;
}

export interface TokenManagerOptions {
  apps: AppRegistry;
  store: TokenStore;
  client: WechatClient;
  policy: RefreshPolicy;
  logger: Logger;
  clock?: Clock;
  /** Randomness in [0, 1) for retry backoff; injectable so tests are deterministic. */
  random?: () => number;
  /** Refresh-time jitter per credential version; deterministic by default (see versionJitter). */
  jitter?: (id: string, version: number) => number;
  /** The cluster-wide refresh lock; single node by default. */
  lock?: RefreshLock;
  /** Where proactive refreshes are planned; a timer per credential by default. */
  dueQueue?: DueQueue;
  /** How long, in all, to wait for other replicas holding a credential's refresh lock. */
  lockWaitMs?: number;
  /** Quota, circuit breakers and retries around WeChat; a default set when absent. */
  guard?: UpstreamGuard;
  /** Observers for metrics and alerts. */
  events?: RefreshEvents;
  /** Refreshes reports may cause per credential (DEFAULT_REPORT_BUDGET when absent). */
  reportBudget?: ReportBudgetOptions;
}

/**
 * The broker's core: hands out credentials from a per-process copy (L1),
 * refreshes them before expiry, coalesces concurrent fetches, and streams
 * new versions to watchers. The store is the source of truth; every write to
 * it (by this process or, with a shared store, another) reaches L1, the
 * schedule and the watchers through the store's subscription.
 */
export class TokenManager {
  readonly #o: Required<Omit<TokenManagerOptions, "events">> & Pick<TokenManagerOptions, "events">;
  readonly #reportBudget: ReportBudget;
  /** Breakers this manager made itself (no guard given), closed with it. */
  #ownBreakers: UpstreamBreakers | undefined;
  readonly #l1 = new Map<string, StoredCredential>();
  /** Each credential version's planned rotation time, computed once (GetToken's hot path). */
  readonly #rotationAt = new WeakMap<StoredCredential, number>();
  /** The value each L1 entry replaced: WeChat still accepts it for a while, so it is scrubbed too. */
  readonly #previousValues = new Map<string, string>();
  readonly #watchers = new WatchHub<StoredCredential>();
  #unsubscribeResync: (() => void) | undefined;
  readonly #lifecycle = new AbortController();
  readonly #refresher: Refresher;
  readonly #schedule: RefreshSchedule;
  #unsubscribe: (() => void) | undefined;
  /** Credentials whose L1 copy is being reconciled with the store. */
  readonly #reconciling = new Set<string>();

  constructor(options: TokenManagerOptions) {
    const clock = options.clock ?? systemClock;
    this.#o = {
      clock,
      random: Math.random,
      jitter: versionJitter,
      lock: new LocalRefreshLock(),
      dueQueue: new LocalDueQueue(clock),
      lockWaitMs: 35_000,
      reportBudget: DEFAULT_REPORT_BUDGET,
      ...options,
      guard: options.guard ?? this.#defaultGuard(clock, options.logger),
    };
    const fetcher = new CredentialFetcher(
      options.client,
      {
        getAccessToken: (appId, signal) => this.get(appId, "access_token", signal),
        reportRejectedAccessToken: async (appId, value, errcode, signal) => {
          await this.invalidate(appId, "access_token", value, errcode, signal, {
            reporter: "broker (ticket fetch)",
          });
        },
        knownValues: (appId) => this.knownValues(appId),
      },
      this.#o.guard,
    );
    this.#reportBudget = new ReportBudget(this.#o.reportBudget, clock);
    this.#refresher = new Refresher({
      store: options.store,
      fetcher,
      clock: this.#o.clock,
      policy: options.policy,
      logger: options.logger,
      lock: this.#o.lock,
      lockWaitMs: this.#o.lockWaitMs,
      signal: this.#lifecycle.signal,
      localCredential: (key) => this.#l1.get(keyId(key)),
      ...(options.events ? { events: options.events } : {}),
      // Fetched while the store was unreachable: held here, written back on resync.
      onLocalWrite: (update) => this.#onUpdate(update),
    });
    this.#schedule = new RefreshSchedule({
      apps: options.apps,
      refresher: this.#refresher,
      store: options.store,
      queue: this.#o.dueQueue,
      clock: this.#o.clock,
      policy: options.policy,
      jitter: this.#o.jitter,
      random: this.#o.random,
      logger: options.logger,
      onNewer: (key, credential) => this.#remember(key, credential),
    });
  }

  #defaultGuard(clock: Clock, logger: Logger): UpstreamGuard {
    this.#ownBreakers = new UpstreamBreakers({ clock, logger });
    return new UpstreamGuard({ breakers: this.#ownBreakers, clock, logger });
  }

  /** Subscribes to the store and fetches the access tokens of apps marked `prefetch`. */
  start(): void {
    this.#unsubscribe = this.#o.store.subscribe((u) => this.#onStored(u));
    this.#unsubscribeResync = this.#o.store.onResync(() => this.#resync(1));
    for (const app of this.#o.apps.all()) {
      if (!app.prefetch) continue;
      this.get(app.id, "access_token", this.#lifecycle.signal).catch((err: unknown) => {
        this.#o.logger.warn(
          { app: app.id, err: errorSummary(err) },
          "prefetch failed; will fetch on first request",
        );
      });
    }
  }

  /** Stops timers and fetches; open watches end when their own signals abort. */
  async close(): Promise<void> {
    if (this.#lifecycle.signal.aborted) return;
    this.#lifecycle.abort(new ShuttingDownError());
    this.#unsubscribe?.();
    this.#unsubscribeResync?.();
    await this.#schedule.close();
    this.#ownBreakers?.close();
    await this.#refresher.drain();
  }

  /** The current credential; fetches it (once, however many callers) if none is servable. */
  async get(appId: string, kind: CredentialKind, signal: AbortSignal): Promise<StoredCredential> {
    const app = this.#o.apps.resolve(appId, kind);
    return this.#servableHeld(appId, kind) ?? this.#getSlow(app, { appId, kind }, signal);
  }

  /**
   * What `get` would answer from memory, without I/O: the servable credential
   * this replica holds, or undefined (then call `get`). Throws like `get` for
   * an unknown app or kind.
   */
  cached(appId: string, kind: CredentialKind): StoredCredential | undefined {
    this.#o.apps.resolve(appId, kind);
    return this.#servableHeld(appId, kind);
  }

  #servableHeld(appId: string, kind: CredentialKind): StoredCredential | undefined {
    const held = this.#l1.get(keyId({ appId, kind }));
    return held && isServable(held, kind, this.#o.clock.now(), this.#o.policy) ? held : undefined;
  }

  /** Compare-and-refresh after WeChat rejected `rejectedValue`. */
  async invalidate(
    appId: string,
    kind: CredentialKind,
    rejectedValue: string,
    errcode: number,
    signal: AbortSignal,
    options: InvalidateOptions = {},
  ): Promise<InvalidateResult> {
    const app = this.#o.apps.resolve(appId, kind);
    const key = { appId, kind };
    const log = this.#o.logger.child({ app: appId, kind, reporter: options.reporter });
    const coldFetch = options.coldFetch ?? true;
    for (let attempt = 0; attempt < 2; attempt++) {
      const current = await this.#storedOrHeld(key);
      if (current) this.#remember(key, current);
      if (current?.value !== rejectedValue) {
        log.debug(
          { errcode, rejected: fingerprint(rejectedValue) },
          "reported value is not current; nothing to do",
        );
        return {
          credential: await this.#currentOrFetch(app, key, current, signal, coldFetch),
          outcome: "already_replaced",
        };
      }
      // Joining a refresh in flight costs nothing; starting one takes from the budget.
      const waitMs = this.#refresher.isRunning(key) ? 0 : this.#reportBudget.take(keyId(key));
      if (waitMs > 0) {
        log.warn(
          {
            errcode,
            rejected: fingerprint(rejectedValue),
            version: current.version,
            retryInMs: waitMs,
          },
          "report not acted on: reports have caused as many refreshes of this credential as allowed for now",
        );
        return {
          credential: await this.#currentOrFetch(app, key, current, signal, coldFetch),
          outcome: "rate_limited",
        };
      }
      const { promise, started } = this.#refresher.run({
        app,
        key,
        reason: "invalidate",
        ifValue: rejectedValue,
      });
      const result = await raceAbort(promise, signal);
      // Read your writes: the store's notification of this write may come later.
      if (result.credential) this.#remember(key, result.credential);
      const outcome = invalidateOutcome(result, started);
      if (outcome === "refreshed")
        this.#checkForeignRefresh(key, current, errcode, options.reporter);
      // A joined run that had a different precondition may not have looked at
      // this value; if it is still current, go round once more and start our own.
      if (
        !started &&
        !result.fetched &&
        !result.declined &&
        result.credential?.value === rejectedValue
      )
        continue;
      log.info(
        {
          errcode,
          rejected: fingerprint(rejectedValue),
          outcome,
          version: result.credential?.version,
        },
        "credential reported invalid",
      );
      return {
        credential: await this.#currentOrFetch(app, key, result.credential, signal, coldFetch),
        outcome,
      };
    }
    const credential = coldFetch
      ? await this.get(appId, kind, signal)
      : await this.#currentOrFetch(app, key, this.#l1.get(keyId(key)), signal, false);
    return { credential, outcome: "already_replaced" };
  }

  /**
   * The stored credential or, while the store is unreachable, what this
   * replica holds: a report is then judged against this replica's copy, and a
   * refresh runs degraded like GetToken's (see the refresher's outage policy).
   */
  async #storedOrHeld(key: CredentialKey): Promise<StoredCredential | undefined> {
    try {
      return await this.#o.store.get(key);
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      return this.#l1.get(keyId(key));
    }
  }

  /**
   * The leak response for a stable token: WeChat issues a new one at once and
   * the old one keeps working for at most 5 minutes. The caller (the admin
   * service) has already checked WeChat's 20-a-day and 30-second limits.
   */
  async forceRefresh(appId: string, signal: AbortSignal): Promise<StoredCredential> {
    const app = this.#o.apps.resolve(appId, "access_token");
    if (app.tokenMode !== "stable") {
      throw new FailedPreconditionError(
        `app '${appId}' uses classic tokens, which rotate on every fetch; ` +
          "call InvalidateToken with its current value instead of a force refresh",
      );
    }
    const key = { appId, kind: "access_token" as const };
    const result = await raceAbort(
      this.#refresher.run({ app, key, reason: "force", force: true }).promise,
      signal,
    );
    if (!result.credential)
      throw new UpstreamUnavailableError(`the force refresh of app '${appId}' stored nothing`);
    this.#remember(key, result.credential);
    return result.credential;
  }

  /** The current credential, then every newer version, until `signal` aborts. */
  async *watch(
    appId: string,
    kind: CredentialKind,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    this.#o.apps.resolve(appId, kind);
    const id = keyId({ appId, kind });
    // Subscribe before reading, so a version written in between is not missed.
    const queue = this.#watchers.open(id, signal);
    try {
      const first = await this.get(appId, kind, signal);
      let last = first.version;
      yield { credential: first };
      for (;;) {
        const next = await queue.next();
        if (next.version <= last) continue;
        last = next.version;
        yield {
          credential: next,
          ...(next.previousValidUntil === undefined
            ? {}
            : { previousValidUntil: next.previousValidUntil }),
        };
      }
    } finally {
      this.#watchers.close(id, queue);
    }
  }

  /**
   * True when a credential should already have been replaced but its refresh
   * keeps failing: it is served until it expires (serve-stale).
   */
  isOverdue(appId: string, kind: CredentialKind): boolean {
    const key = { appId, kind };
    const held = this.#l1.get(keyId(key));
    if (!held) return false;
    return (
      !isServable(held, kind, this.#o.clock.now(), this.#o.policy) ||
      this.#refresher.lastFailure(key) !== undefined
    );
  }

  /** The last refresh error of a credential since its last success, if any. */
  lastError(appId: string, kind: CredentialKind): string | undefined {
    return this.#refresher.lastFailure({ appId, kind })?.message;
  }

  /** Every credential this replica holds in memory (status, metrics). */
  held(): Array<{ key: CredentialKey; credential: StoredCredential }> {
    const out: Array<{ key: CredentialKey; credential: StoredCredential }> = [];
    for (const [id, credential] of this.#l1) {
      const key = parseKeyId(id);
      if (key) out.push({ key, credential });
    }
    return out;
  }

  /**
   * When a credential stops working as far as clients are told: for a classic
   * token at most 300 s after this broker will rotate it (refresh-policy's
   * reportedExpiresAt), never later than WeChat will really accept it.
   */
  reportedExpiresAt(appId: string, kind: CredentialKind, credential: StoredCredential): number {
    const app = this.#o.apps.resolve(appId, kind);
    if (kind !== "access_token" || app.tokenMode !== "classic") return credential.expiresAt;
    let rotationAt = this.#rotationAt.get(credential);
    if (rotationAt === undefined) {
      const random = this.#o.jitter(keyId({ appId, kind }), credential.version);
      rotationAt = refreshAt(credential, kind, app.tokenMode, this.#o.policy, random);
      this.#rotationAt.set(credential, rotationAt);
    }
    return reportedExpiresAt(credential, kind, app.tokenMode, rotationAt, this.#o.clock.now());
  }

  /** Every credential value of an app held here, current and previous (scrubbed from WeChat's text). */
  knownValues(appId: string): string[] {
    const out: string[] = [];
    for (const [id, credential] of this.#l1) {
      if (parseKeyId(id)?.appId !== appId) continue;
      out.push(credential.value);
      const previous = this.#previousValues.get(id);
      if (previous !== undefined) out.push(previous);
    }
    return out;
  }

  /** What this replica holds in memory for a credential, without fetching (status, tests). */
  peek(appId: string, kind: CredentialKind): StoredCredential | undefined {
    return this.#l1.get(keyId({ appId, kind }));
  }

  /** New credentials this replica fetched and stored since it started. */
  get refreshesWritten(): number {
    return this.#refresher.written;
  }

  /** True while a refresh of any credential runs in this process (tests wait for quiet). */
  get refreshing(): boolean {
    return this.#refresher.running > 0;
  }

  /** Number of open watches, for metrics and tests. */
  get watcherCount(): number {
    return this.#watchers.size;
  }

  /** When the next proactive refresh of a credential is due, if scheduled. */
  nextRefreshAt(appId: string, kind: CredentialKind): number | undefined {
    return this.#schedule.dueAt({ appId, kind });
  }

  async #getSlow(
    app: AppConfig,
    key: CredentialKey,
    signal: AbortSignal,
  ): Promise<StoredCredential> {
    // An unreachable store is handled by the refresher (degraded mode).
    const stored = await this.#o.store.get(key).catch((err: unknown) => {
      if (isStoreUnavailable(err)) return undefined;
      throw err;
    });
    if (stored) {
      this.#remember(key, stored);
      if (isServable(stored, key.kind, this.#o.clock.now(), this.#o.policy)) return stored;
    }
    let result: RefreshOutcome;
    try {
      result = await raceAbort(
        this.#refresher.run({ app, key, reason: stored ? "expired" : "cold", unlessServable: true })
          .promise,
        signal,
      );
    } catch (err) {
      // Serve stale: a credential WeChat still accepts beats an error.
      const held = this.#l1.get(keyId(key));
      if (held && held.expiresAt > this.#o.clock.now() && !signal.aborted) {
        this.#o.logger.warn(
          { app: key.appId, kind: key.kind, version: held.version, expiresAt: held.expiresAt },
          "refresh failed; serving the current credential until it expires",
        );
        return held;
      }
      throw err;
    }
    const credential = result.credential;
    if (credential) this.#remember(key, credential);
    // A ticket WeChat re-confirmed may be inside its last second; it is still
    // valid, so hand it out rather than fail.
    if (credential && credential.expiresAt > this.#o.clock.now()) return credential;
    throw new UpstreamUnavailableError(
      `WeChat returned no valid ${describeKey(key)} (the one it returned has already expired); retry shortly`,
    );
  }

  async #currentOrFetch(
    app: AppConfig,
    key: CredentialKey,
    known: StoredCredential | undefined,
    signal: AbortSignal,
    coldFetch = true,
  ): Promise<StoredCredential> {
    if (known && known.expiresAt > this.#o.clock.now()) return known;
    if (coldFetch) return this.#getSlow(app, key, signal);
    // The reporter may not read tokens: a fetch would be for nobody it serves.
    if (known) return known;
    throw new FailedPreconditionError(
      `the broker holds no ${describeKey(key)}, so there is nothing to invalidate; ` +
        "it is fetched when a client that may read it (get or watch) asks for it",
    );
  }

  #checkForeignRefresh(
    key: CredentialKey,
    rejected: StoredCredential,
    errcode: number,
    reporter: string | undefined,
  ): void {
    const { clock, policy, logger, events } = this.#o;
    let evidence = foreignRefreshEvidence(
      key.kind,
      rejected,
      errcode,
      clock.now(),
      policy.marginMs,
    );
    if (!evidence) return;
    if (reporter !== undefined) evidence = { ...evidence, reportedBy: reporter };
    logger.error(
      { app: key.appId, ...evidence },
      "token rejected long before expiry: another party is fetching tokens for this appid",
    );
    try {
      events?.foreignRefresh?.(key, evidence);
    } catch (err) {
      logger.error({ err }, "a refresh observer threw");
    }
  }

  /** Resyncs with the store; retries with backoff if the store fails again meanwhile. */
  #resync(attempt: number): void {
    resyncWithStore({
      held: this.#l1,
      store: this.#o.store,
      clock: this.#o.clock,
      logger: this.#o.logger,
      adopt: (u) => this.#onUpdate(u),
    }).catch((err: unknown) => {
      if (this.#lifecycle.signal.aborted) return;
      const delay = retryDelayMs(attempt, false, this.#o.policy, this.#o.random());
      this.#o.logger.warn(
        { err: (err as Error).message, attempt, retryInMs: delay },
        "resync with the store failed",
      );
      this.#o.clock.schedule(() => this.#resync(attempt + 1), delay);
    });
  }

  /**
   * A credential as the store holds it now (re-read after a write notice).
   * The store is the source of truth: when it disagrees with L1 (after a
   * restart, two replicas' values), its restore rule settles which one
   * WeChat issued last, and L1 takes that.
   */
  #onStored(update: CredentialUpdate): void {
    const id = keyId(update.key);
    const held = this.#l1.get(id);
    if (!held || !needsReconcile(held, update.credential)) {
      this.#onUpdate(update);
      return;
    }
    if (this.#reconciling.has(id)) return;
    this.#reconciling.add(id);
    reconcileWithStore(this.#o.store, update.key, held)
      .then((settled) => {
        if (settled) this.#onUpdate({ key: update.key, credential: settled });
      })
      .catch((err: unknown) => {
        // The resync after the store's next reconnect settles it.
        this.#o.logger.warn(
          { app: update.key.appId, kind: update.key.kind, err: errorSummary(err) },
          "could not reconcile a credential with the store",
        );
      })
      .finally(() => this.#reconciling.delete(id));
  }

  /** Feeds L1, the refresh schedule and watchers from every store write. */
  #onUpdate({ key, credential }: CredentialUpdate): void {
    this.#remember(key, credential);
    this.#watchers.publish(keyId(key), credential);
  }

  /** Keeps the newest known version in L1 and plans its proactive refresh. */
  #remember(key: CredentialKey, credential: StoredCredential): void {
    const id = keyId(key);
    const known = this.#l1.get(id);
    if (known && known.version >= credential.version) {
      this.#schedule.ensurePlanned(key, known);
      return;
    }
    if (known && known.value !== credential.value) this.#previousValues.set(id, known.value);
    this.#l1.set(id, credential);
    this.#schedule.planNew(key, credential);
  }
}

function invalidateOutcome(result: RefreshOutcome, started: boolean): InvalidateOutcome {
  if (result.declined) return "rate_limited";
  if (!result.fetched) return "already_replaced";
  if (!started) return "joined_refresh";
  return result.changed ? "refreshed" : "confirmed_current";
}

function errorSummary(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
