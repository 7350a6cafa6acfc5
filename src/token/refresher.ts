import {
  type CredentialKey,
  describeKey,
  keyId,
  MAX_CREDENTIAL_LIFETIME_MS,
  type StoredCredential,
} from "../core/credential.js";
import type { FetchedCredential } from "../core/kind.js";
import type { Lease, RefreshLock } from "../core/ports/refresh-lock.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import { ReportShareUsedError, UpstreamError } from "../core/upstream-error.js";
import type { Clock } from "../shared/clock.js";
import {
  type BrokerError,
  StoreUnavailableError,
  UpstreamUnavailableError,
} from "../shared/errors.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import type { KindFetcher } from "./kind-fetcher.js";
import type { RefreshEvents, RefreshReason } from "./refresh-events.js";
import type { CredentialRules, RefreshPolicy } from "./refresh-policy.js";
import { SingleFlight } from "./single-flight.js";
import { toBrokerError } from "./to-broker-error.js";
import { watchWrites } from "./write-watch.js";

export type { RefreshReason };

export interface RefreshRequest {
  /** The credential's kind and account rules. */
  readonly rules: CredentialRules;
  readonly key: CredentialKey;
  readonly reason: RefreshReason;
  /** Compare-and-refresh: fetch only if the stored value is still this. */
  readonly ifValue?: string;
  /** Scheduled refresh: fetch only if the stored version is still this. */
  readonly ifVersion?: number;
  /** Cold path: skip the fetch if a servable credential is stored by now. */
  readonly unlessServable?: boolean;
  /** Scheduled retries ignore the short failure hold that protects WeChat from callers. */
  readonly ignoreFailureHold?: boolean;
  /** An operator's leak response: stable_token with force_refresh, never joined with another run. */
  readonly force?: boolean;
}

export interface RefreshOutcome {
  /** What is stored after the run (undefined only if nothing is and nothing was fetched). */
  readonly credential: StoredCredential | undefined;
  /** WeChat was called. */
  readonly fetched: boolean;
  /** A new value was written. */
  readonly changed: boolean;
  /** A report's refresh was not called: reports used their share of the daily budget. */
  readonly declined?: boolean;
}

export interface RefresherOptions {
  store: TokenStore;
  fetcher: KindFetcher;
  clock: Clock;
  policy: RefreshPolicy;
  logger: Logger;
  /** The cluster-wide refresh lock (LocalRefreshLock on a single node). */
  lock: RefreshLock;
  /**
   * How long, in all, a caller waits for other replicas holding the lock of a
   * credential before it gives up. A dead holder costs only what is left of
   * its lease: the waiter tries the lock again as soon as that can have run out.
   */
  lockWaitMs: number;
  /** Aborted when the broker shuts down: cancels fetches in flight. */
  signal: AbortSignal;
  /** What this replica holds for `key` (used when the store is unreachable). */
  localCredential: (key: CredentialKey) => StoredCredential | undefined;
  /** Receives credentials fetched while the store was unreachable. */
  onLocalWrite: (update: CredentialUpdate) => void;
  /** Observers for metrics and alerts. */
  events?: RefreshEvents;
}

/** Past a held lease's PTTL before trying the lock again: timer and round-trip slack. */
const LEASE_MARGIN_MS = 50;

/**
 * Runs refreshes: one at a time per credential (callers arriving meanwhile
 * share the result), with the precondition checked against the store inside
 * the run, so concurrent reports of one stale value cause one fetch.
 *
 * After a failed fetch, new runs for the same credential fail fast with the
 * same error for a short hold, so a crowd of callers cannot hammer WeChat
 * while it is down or rejecting the config.
 */
export class Refresher {
  readonly #flights = new SingleFlight<RefreshOutcome>();
  readonly #failures = new Map<string, { error: BrokerError; until: number }>();
  /** The last failed refresh of each credential, until one succeeds. */
  readonly #lastFailure = new Map<string, { at: number; message: string }>();
  #written = 0;

  constructor(private readonly o: RefresherOptions) {}

  /** New credentials this process fetched and stored (for metrics and tests). */
  get written(): number {
    return this.#written;
  }

  /** Refreshes in progress in this process. */
  get running(): number {
    return this.#flights.size;
  }

  /** The last failed refresh of `key` since its last success, if any. */
  lastFailure(key: CredentialKey): { at: number; message: string } | undefined {
    return this.#lastFailure.get(keyId(key));
  }

  isRunning(key: CredentialKey): boolean {
    return this.#flights.has(keyId(key));
  }

  run(request: RefreshRequest): { promise: Promise<RefreshOutcome>; started: boolean } {
    const id = keyId(request.key);
    if (request.force) {
      // Waits for a normal run in flight, then forces its own.
      const prior = this.#flights.current(id) ?? Promise.resolve();
      const promise = prior
        .catch(() => undefined)
        .then(() => this.#flights.run(id, () => this.#refresh(request)).promise);
      return { promise, started: true };
    }
    const held = this.#failures.get(id);
    if (held && !request.ignoreFailureHold && !this.#flights.has(id)) {
      if (this.o.clock.now() < held.until)
        return { promise: Promise.reject(held.error), started: false };
      this.#failures.delete(id);
    }
    return this.#flights.run(id, () => this.#refresh(request));
  }

  /** Waits for refreshes in flight (used on shutdown). */
  drain(): Promise<void> {
    return this.#flights.drain();
  }

  async #refresh(r: RefreshRequest): Promise<RefreshOutcome> {
    try {
      return await this.#refreshShared(r);
    } catch (err) {
      // A scheduled refresh can wait for the store to come back; a caller
      // without a valid credential cannot.
      if (!(err instanceof StoreUnavailableError) || r.reason === "scheduled") throw err;
      return this.#refreshDegraded(r, err);
    }
  }

  /**
   * Outage policy: the shared store or its lock is unreachable and a caller
   * has no valid credential. Fetch anyway, without the cluster lock, and keep
   * the result in this replica only; it is written back when the store
   * returns. Other replicas may do the same, which for a classic token can
   * rotate it more than once (stable tokens do not rotate early, so they are
   * unaffected). The alternative, failing every caller, is certain.
   */
  async #refreshDegraded(r: RefreshRequest, cause: unknown): Promise<RefreshOutcome> {
    const current = this.o.localCredential(r.key);
    if (!this.#preconditionHolds(r, current)) return skip(current);
    this.o.logger.warn(
      { app: r.key.appId, kind: r.key.kind, reason: r.reason, cause: (cause as Error).message },
      "shared store unreachable: fetching without the cluster lock (degraded)",
    );
    const lease = { fence: 0, signal: this.o.signal };
    return this.#fetchAndWrite(r, current, lease, {
      async compareAndSet(_key, expectedVersion, _fence, next) {
        return { written: true, credential: { ...next, version: expectedVersion + 1 } };
      },
      localOnly: true,
    });
  }

  async #refreshShared(r: RefreshRequest): Promise<RefreshOutcome> {
    const { store, clock } = this.o;
    const giveUpAt = clock.now() + this.o.lockWaitMs;
    let current = await store.get(r.key);
    for (;;) {
      if (!this.#preconditionHolds(r, current)) return skip(current);
      const known = current?.version ?? 0;
      // Listen before trying the lock: the holder's write may land right after the attempt fails.
      const watch = watchWrites(this.o, r.key, known);
      try {
        const locked = await this.o.lock.withLock(r.key, async (lease) => {
          // Re-read under the lock: another replica may have just refreshed.
          const fresh = await store.get(r.key);
          if (!this.#preconditionHolds(r, fresh)) return skip(fresh);
          return this.#fetchAndWrite(r, fresh, lease);
        });
        if (locked.acquired) return locked.value;
        // Another replica is refreshing: take its result from the store instead
        // of calling WeChat too. Re-read first: it may have written before we listened.
        current = await store.get(r.key);
        if ((current?.version ?? 0) > known) continue;
        const leftMs = giveUpAt - clock.now();
        if (leftMs <= 0) {
          throw new UpstreamUnavailableError(
            `another broker replica holds the refresh lock of the ${describeKey(r.key)} and has not finished; retry shortly`,
          );
        }
        // Until its write, or until its lease can have run out (a dead holder).
        const waitStarted = clock.now();
        await watch.wait(Math.min(leftMs, locked.leaseRemainingMs + LEASE_MARGIN_MS));
        if (this.o.signal.aborted) throw this.o.signal.reason;
        current = await store.get(r.key);
        const waitedMs = clock.now() - waitStarted;
        const newer = (current?.version ?? 0) > known;
        this.#emit((e) => e.lockWaited?.(r.key, waitedMs / 1000, newer));
      } finally {
        watch.close();
      }
    }
  }

  #emit(call: (events: RefreshEvents) => void): void {
    if (!this.o.events) return;
    try {
      call(this.o.events);
    } catch (err) {
      this.o.logger.error({ err }, "a refresh observer threw");
    }
  }

  #preconditionHolds(r: RefreshRequest, current: StoredCredential | undefined): boolean {
    if (r.ifValue !== undefined && current?.value !== r.ifValue) return false;
    if (r.ifVersion !== undefined && (current?.version ?? 0) !== r.ifVersion) return false;
    if (r.unlessServable && current && r.rules.isServable(current, this.o.clock.now())) {
      return false;
    }
    return true;
  }

  async #fetchAndWrite(
    r: RefreshRequest,
    current: StoredCredential | undefined,
    lease: Lease,
    target: CasTarget = {
      compareAndSet: (...a) => this.o.store.compareAndSet(...a),
      localOnly: false,
    },
  ): Promise<RefreshOutcome> {
    const { clock, policy, logger } = this.o;
    const startedAt = clock.now();
    const log = logger.child({ app: r.key.appId, kind: r.key.kind, reason: r.reason });
    let fetched: FetchedCredential;
    try {
      fetched = await this.o.fetcher.fetch({
        rules: r.rules,
        key: r.key,
        current,
        signal: AbortSignal.any([this.o.signal, lease.signal]),
        retries: r.reason !== "scheduled",
        force: r.force === true,
        purpose: r.reason === "invalidate" ? "report" : "any",
      });
      // A lost lease means another replica may be refreshing: do not write.
      if (lease.signal.aborted) throw lease.signal.reason;
    } catch (err) {
      // Not a failure of WeChat or of the credential: nothing to hold or alert on.
      if (err instanceof ReportShareUsedError) {
        log.warn(
          { detail: err.detail },
          "report not acted on: the reports' share of the quota is used",
        );
        return { credential: current, fetched: false, changed: false, declined: true };
      }
      const error = toBrokerError(err, r.key);
      const upstream = err instanceof UpstreamError ? err : undefined;
      const slow =
        upstream?.category === "config" ||
        upstream?.category === "quota" ||
        upstream?.category === "unknown";
      // A refused force refresh (20 a day) says nothing about normal refreshes
      // (§12 C2): the operator gets the error; callers are not held back.
      if (!r.force) {
        this.#failures.set(keyId(r.key), {
          error,
          until: clock.now() + (slow ? policy.retryMaxMs : policy.retryInitialMs),
        });
        this.#lastFailure.set(keyId(r.key), { at: clock.now(), message: error.message });
        this.#emit((e) => e.failed?.(r.key, error, r.reason));
      }
      log.warn(
        {
          errcode: upstream?.errcode,
          category: upstream?.category,
          durationMs: clock.now() - startedAt,
        },
        `refresh failed: ${upstream?.message ?? error.message}`,
      );
      throw error;
    }
    this.#failures.delete(keyId(r.key));
    this.#lastFailure.delete(keyId(r.key));

    if (current && fetched.value === current.value && fetched.state === undefined) {
      log.info(
        { version: current.version, fingerprint: fingerprint(current.value) },
        "WeChat returned the current value",
      );
      this.#emit((e) => e.unchanged?.(r.key, r.reason));
      return { credential: current, fetched: true, changed: false };
    }
    // Expiry counts from when the request left: the credential was issued at
    // some point after that, so this errs on the early side.
    // Capped at what WeChat issues: the store refuses a record claiming more.
    const expiresAt =
      startedAt + Math.min(fetched.expiresInSeconds * 1000, MAX_CREDENTIAL_LIFETIME_MS);
    const previousValidUntil =
      current && current.value !== fetched.value
        ? r.rules.replacedValidUntil(current, startedAt)
        : undefined;
    // A kind's state (a refresh token) is kept unless its fetch returned a new one.
    const state = fetched.state ?? current?.state;
    const next = {
      value: fetched.value,
      fetchedAt: startedAt,
      expiresAt,
      ...(previousValidUntil === undefined ? {} : { previousValidUntil }),
      ...(state === undefined ? {} : { state }),
    };
    // Numbered above what this replica remembers: a store that restarted
    // empty must not give this value the version of an older one.
    const minVersion = (this.o.localCredential(r.key)?.version ?? 0) + 1;
    let cas = await target.compareAndSet(
      r.key,
      current?.version ?? 0,
      lease.fence,
      next,
      minVersion,
    );
    // A replica's write-back after a store restart can land between our read
    // and our write; WeChat issued ours last (the other is already replaced), so ours goes on top.
    for (let round = 0; round < 3 && !cas.written && cas.reason === "version"; round++) {
      const stored = cas.current;
      if (stored && (stored.value === next.value || stored.fetchedAt >= next.fetchedAt)) break;
      cas = await target.compareAndSet(r.key, stored?.version ?? 0, lease.fence, next, minVersion);
    }
    if (!cas.written) {
      log.warn(
        { reason: cas.reason, storedVersion: cas.current?.version, fence: lease.fence },
        "store refused the write (a newer credential or a newer lock holder); keeping what is stored",
      );
      return { credential: cas.current, fetched: true, changed: false };
    }
    this.#written++;
    const written = cas.credential;
    this.#emit((e) => e.refreshed?.(r.key, written, r.reason, target.localOnly));
    if (target.localOnly) this.o.onLocalWrite({ key: r.key, credential: cas.credential });
    log.info(
      {
        degraded: target.localOnly || undefined,
        version: cas.credential.version,
        fingerprint: fingerprint(fetched.value),
        expiresInS: fetched.expiresInSeconds,
        durationMs: clock.now() - startedAt,
      },
      "refreshed",
    );
    return { credential: cas.credential, fetched: true, changed: true };
  }
}

/** Where a refresh writes: the shared store, or (degraded) this replica only. */
interface CasTarget {
  compareAndSet: TokenStore["compareAndSet"];
  localOnly: boolean;
}

function skip(credential: StoredCredential | undefined): RefreshOutcome {
  return { credential, fetched: false, changed: false };
}
