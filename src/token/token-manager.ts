import {
  type CredentialKey,
  type CredentialKind,
  keyId,
  type StoredCredential,
} from "../core/credential.js";
import { type Clock, systemClock } from "../shared/clock.js";
import { ShuttingDownError } from "../shared/errors.js";
import { type Collaborators, wireCollaborators } from "./collaborators.js";
import { CredentialCache } from "./credential-cache.js";
import { ForceRefresh } from "./force-refresh.js";
import type { Grants } from "./grants.js";
import type { InvalidateOptions, InvalidateResult, Invalidation } from "./invalidation.js";
import { prefetchAccessTokens } from "./prefetch.js";
import { type RefreshSchedule, versionJitter } from "./refresh-schedule.js";
import type { Refresher } from "./refresher.js";
import { ReportedExpiry } from "./reported-expiry.js";
import { retireUnconfigured } from "./retire-unconfigured.js";
import { RulesBook } from "./rules-book.js";
import type { StoreFollower } from "./store-follower.js";
import type { TokenManagerOptions } from "./token-manager-options.js";
import { WatchHub } from "./watch-hub.js";

export type { InvalidateOptions, InvalidateOutcome, InvalidateResult } from "./invalidation.js";
export type { TokenManagerOptions } from "./token-manager-options.js";

export interface WatchEvent {
  readonly credential: StoredCredential;
}

/**
 * The façade of the token core: lookup, get, invalidate, watch and force over
 * collaborators with one job each (L1 cache, intake, refresher, schedule,
 * invalidation protocol, store follower, watch hub, reported expiry). The
 * store is the source of truth; every write to it reaches L1, the schedule
 * and the watchers through the store's subscription (the intake). Nothing
 * starts before `start()`.
 */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #clock: Clock;
  readonly #rules: RulesBook;
  readonly #cache: CredentialCache;
  readonly #expiry: ReportedExpiry;
  readonly #watchers = new WatchHub<StoredCredential>();
  readonly #lifecycle = new AbortController();
  readonly #refresher: Refresher;
  readonly #schedule: RefreshSchedule;
  readonly #invalidation: Invalidation;
  readonly #follower: StoreFollower;
  readonly #force: ForceRefresh;

  constructor(o: TokenManagerOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#cache = new CredentialCache(o.maxSubjectEntries);
    const jitter = o.jitter ?? versionJitter;
    this.#expiry = new ReportedExpiry(this.#clock, jitter);
    this.#rules = new RulesBook(o.apps, o.policy);
    const parts = wireCollaborators(o, {
      clock: this.#clock,
      jitter,
      rules: this.#rules,
      cache: this.#cache,
      watchers: this.#watchers,
      signal: this.#lifecycle.signal,
      get: (key, signal) => this.#get(key, signal),
      reportStale: async (key, value, errcode, signal) => {
        await this.invalidate(key.appId, key.kind, value, errcode, signal, {
          reporter: "broker (dependent fetch)",
        });
      },
    });
    this.#refresher = parts.refresher;
    this.#schedule = parts.schedule;
    this.#invalidation = parts.invalidation;
    this.#follower = parts.follower;
    this.#force = new ForceRefresh(this.#rules, parts.refresher, parts.intake);
    this.#load = parts.load;
    this.grants = parts.grants;
  }

  /** Subject kinds' grants (a user's OAuth grant): store from a code exchange, forget. */
  readonly grants: Grants;

  readonly #load: Collaborators["load"];

  /** Follows the store, takes due refreshes, and fetches the access tokens of apps marked `prefetch`. */
  start(): void {
    this.#follower.start();
    this.#schedule.start();
    prefetchAccessTokens(
      this.#o.apps,
      (appId, kind, signal) => this.get(appId, kind, signal),
      this.#lifecycle.signal,
      this.#o.logger,
    );
  }

  /** Stops timers and fetches; open watches end when their own signals abort. */
  async close(): Promise<void> {
    if (this.#lifecycle.signal.aborted) return;
    this.#lifecycle.abort(new ShuttingDownError());
    this.#follower.stop();
    await this.#schedule.close();
    await this.#refresher.drain();
  }

  /** The current credential; fetches it (once, however many callers) if none is servable. */
  async get(
    appId: string,
    kind: CredentialKind,
    signal: AbortSignal,
    subject?: string,
  ): Promise<StoredCredential> {
    return this.#get(keyOf(appId, kind, subject), signal);
  }

  async #get(key: CredentialKey, signal: AbortSignal): Promise<StoredCredential> {
    const resolved = this.#rules.resolve(key);
    const held = this.#cache.get(key);
    if (held && resolved.rules.isServable(held, this.#clock.now())) return held;
    return this.#load(resolved, key, signal);
  }

  /**
   * What `get` would answer from memory, without I/O: the servable credential
   * this replica holds, or undefined (then call `get`). Throws like `get` for
   * an unknown app, kind or subject.
   */
  cached(appId: string, kind: CredentialKind, subject?: string): StoredCredential | undefined {
    const key = keyOf(appId, kind, subject);
    const { rules } = this.#rules.resolve(key);
    const held = this.#cache.get(key);
    return held && rules.isServable(held, this.#clock.now()) ? held : undefined;
  }

  /** The errcodes meaning a credential is stale, by its app's family (what InvalidateToken accepts). */
  staleErrcodes(appId: string, kind: CredentialKind, subject?: string): readonly number[] {
    return this.#rules.resolve(keyOf(appId, kind, subject)).rules.spec.errcodes.stale;
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
    const key = keyOf(appId, kind, options.subject);
    const resolved = this.#rules.resolve(key);
    return this.#invalidation.run(resolved, key, rejectedValue, errcode, signal, options);
  }

  /** Why the app's `kind` cannot be force-refreshed (checked before any quota is counted), or undefined. */
  forceRefusal(appId: string, kind = "access_token"): string | undefined {
    return this.#force.refusal(appId, kind);
  }

  /** An operator's leak response (ForceRefresh); quotas are the caller's to check. */
  forceRefresh(
    appId: string,
    signal: AbortSignal,
    kind = "access_token",
  ): Promise<StoredCredential> {
    return this.#force.run(appId, kind, signal);
  }

  /**
   * The current credential, then every newer version, until `signal` aborts.
   * A watcher that falls behind skips to the newest version (UpdateQueue).
   */
  async *watch(
    appId: string,
    kind: CredentialKind,
    signal: AbortSignal,
    subject?: string,
  ): AsyncGenerator<WatchEvent> {
    const key = keyOf(appId, kind, subject);
    this.#rules.resolve(key);
    const id = keyId(key);
    // Subscribe before reading, so a version written in between is not missed.
    const queue = this.#watchers.open(id, signal);
    try {
      const first = await this.#get(key, signal);
      let last = first.version;
      yield { credential: first };
      for (;;) {
        const next = await queue.next();
        if (next.version <= last) continue;
        last = next.version;
        yield { credential: next };
      }
    } finally {
      this.#watchers.close(id, queue);
    }
  }

  /** After a config reload: ends the watches and forgets the credentials no longer configured (retire-unconfigured.ts). */
  retireUnconfigured(): void {
    retireUnconfigured({
      apps: this.#o.apps,
      rules: this.#rules,
      cache: this.#cache,
      watchers: this.#watchers,
    });
  }

  /**
   * True when a credential should already have been replaced but its refresh
   * keeps failing: it is served until it expires (serve-stale).
   */
  isOverdue(appId: string, kind: CredentialKind, subject?: string): boolean {
    const key = keyOf(appId, kind, subject);
    const held = this.#cache.get(key);
    const resolved = held && this.#rules.find(key);
    if (!held || !resolved) return false;
    return (
      !resolved.rules.isServable(held, this.#clock.now()) ||
      this.#refresher.lastFailure(key) !== undefined
    );
  }

  /** The last refresh error of a credential since its last success, if any. */
  lastError(appId: string, kind: CredentialKind, subject?: string): string | undefined {
    return this.#refresher.lastFailure(keyOf(appId, kind, subject))?.message;
  }

  /** The account-level credentials this replica holds (status, metrics); never users' tokens. */
  held(): Array<{ key: CredentialKey; credential: StoredCredential }> {
    return this.#cache.entries();
  }

  /** When a credential stops working as far as clients are told (reported-expiry.ts). */
  reportedExpiresAt(
    appId: string,
    kind: CredentialKind,
    credential: StoredCredential,
    subject?: string,
  ): number {
    const key = keyOf(appId, kind, subject);
    return this.#expiry.of(key, this.#rules.resolve(key).rules, credential);
  }

  /** When the broker will replace a credential, as clients are told (`Token.refresh_after`). */
  refreshAfter(
    appId: string,
    kind: CredentialKind,
    credential: StoredCredential,
    subject?: string,
  ): number {
    const key = keyOf(appId, kind, subject);
    return this.#expiry.refreshAfter(key, this.#rules.resolve(key).rules, credential);
  }

  /** Every credential value of an app held here, current and previous (scrubbed from WeChat's text). */
  knownValues(appId: string): string[] {
    return this.#cache.knownValues(appId);
  }

  /** What this replica holds in memory for a credential, without fetching (status, tests). */
  peek(appId: string, kind: CredentialKind, subject?: string): StoredCredential | undefined {
    return this.#cache.get(keyOf(appId, kind, subject));
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
  /** Users' tokens held in L1 (at most cache.maxUserTokens). */
  get userTokensHeld(): number {
    return this.#cache.subjectCount;
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }

  /** When the next proactive refresh of a credential is due, if scheduled. */
  nextRefreshAt(appId: string, kind: CredentialKind, subject?: string): number | undefined {
    return this.#schedule.dueAt(keyOf(appId, kind, subject));
  }
}

function keyOf(appId: string, kind: CredentialKind, subject: string | undefined): CredentialKey {
  return subject === undefined || subject === "" ? { appId, kind } : { appId, kind, subject };
}
