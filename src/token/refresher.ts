import type { Attributes, Span } from "@opentelemetry/api";
import {
  type CredentialKey,
  describeKey,
  keyId,
  type StoredCredential,
} from "../core/credential.js";
import type { RefreshLock } from "../core/ports/refresh-lock.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import { StoreUnavailableError, UpstreamUnavailableError } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { inSpan, startSpan } from "../shared/spans.js";
import { ConfirmedValues } from "./confirmed-values.js";
import type { KindFetcher } from "./kind-fetcher.js";
import { notify, type RefreshEvents, type RefreshReason } from "./refresh-events.js";
import { RefreshFailures } from "./refresh-failures.js";
import type { RefreshPolicy } from "./refresh-policy.js";
import {
  preconditionHolds,
  type RefreshOutcome,
  type RefreshRequest,
  skip,
} from "./refresh-request.js";
import { RefreshWriter } from "./refresh-write.js";
import { SingleFlight } from "./single-flight.js";
import { watchWrites } from "./write-watch.js";

/** A span ended at most once, with attributes set as it ends. */
function endOnce(span: Span): { end(attributes: Attributes): void } {
  let open = true;
  return {
    end(attributes) {
      if (!open) return;
      open = false;
      span.setAttributes(attributes);
      span.end();
    },
  };
}

export type { RefreshOutcome, RefreshReason, RefreshRequest };

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
  /** WeChat voided the grant `current` (a "grant" errcode): delete it. */
  onGrantVoid?: (key: CredentialKey, current: StoredCredential) => Promise<void>;
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
  readonly #failures: RefreshFailures;
  readonly #confirmed: ConfirmedValues;
  readonly #writer: RefreshWriter;

  constructor(private readonly o: RefresherOptions) {
    this.#failures = new RefreshFailures(o.clock);
    this.#confirmed = new ConfirmedValues(o.clock);
    this.#writer = new RefreshWriter({
      store: o.store,
      fetcher: o.fetcher,
      clock: o.clock,
      policy: o.policy,
      logger: o.logger,
      signal: o.signal,
      failures: this.#failures,
      confirmed: this.#confirmed,
      events: o.events,
      localCredential: o.localCredential,
      onLocalWrite: o.onLocalWrite,
      ...(o.onGrantVoid ? { onGrantVoid: o.onGrantVoid } : {}),
    });
  }

  /** New credentials this process fetched and stored (for metrics and tests). */
  get written(): number {
    return this.#writer.written;
  }

  /** Refreshes in progress in this process. */
  get running(): number {
    return this.#flights.size;
  }

  /** The last failed refresh of `key` since its last success, if any. */
  lastFailure(key: CredentialKey): { at: number; message: string } | undefined {
    return this.#failures.last(key);
  }

  isRunning(key: CredentialKey): boolean {
    return this.#flights.has(keyId(key));
  }

  run(request: RefreshRequest): { promise: Promise<RefreshOutcome>; started: boolean } {
    const id = keyId(request.key);
    if (request.force || request.supplied) {
      // Waits for a normal run in flight, then runs its own: a force must
      // reach WeChat, and a supplied grant must be stored, not dropped.
      const prior = this.#flights.current(id) ?? Promise.resolve();
      const promise = prior
        .catch(() => undefined)
        .then(() => this.#flights.run(id, () => this.#refresh(request)).promise);
      return { promise, started: true };
    }
    if (!request.ignoreFailureHold && !this.#flights.has(id)) {
      const error = this.#failures.holding(id);
      if (error) return { promise: Promise.reject(error), started: false };
    }
    return this.#flights.run(id, () => this.#refresh(request));
  }

  /** Waits for refreshes in flight (used on shutdown). */
  drain(): Promise<void> {
    return this.#flights.drain();
  }

  #refresh(r: RefreshRequest): Promise<RefreshOutcome> {
    const attributes = {
      "broker.app_id": r.key.appId,
      "broker.kind": r.key.kind,
      "broker.refresh_reason": r.reason,
    };
    return inSpan(`refresh ${r.key.kind}`, attributes, async (span) => {
      let outcome: RefreshOutcome;
      try {
        outcome = await this.#refreshShared(r);
      } catch (err) {
        // A scheduled refresh can wait for the store to come back; a caller
        // without a valid credential cannot.
        if (!(err instanceof StoreUnavailableError) || r.reason === "scheduled") throw err;
        span.setAttribute("broker.degraded", true);
        outcome = await this.#refreshDegraded(r, err);
      }
      if (outcome.credential) span.setAttribute("broker.version", outcome.credential.version);
      return outcome;
    });
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
    if (!this.#wantsFetch(r, current)) return skip(current);
    this.o.logger.warn(
      { app: r.key.appId, kind: r.key.kind, reason: r.reason, cause: (cause as Error).message },
      "shared store unreachable: fetching without the cluster lock (degraded)",
    );
    const lease = { fence: 0, signal: this.o.signal };
    return this.#writer.fetchAndWrite(r, current, lease, {
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
      if (!this.#wantsFetch(r, current)) return skip(current);
      const known = current?.version ?? 0;
      // Listen before trying the lock: the holder's write may land right after the attempt fails.
      const watch = watchWrites(this.o, r.key, known);
      try {
        // The span measures the wait for the lock, not the work done under it.
        const lockSpan = endOnce(
          startSpan("refresh lock", { "broker.app_id": r.key.appId, "broker.kind": r.key.kind }),
        );
        const locked = await this.o.lock
          .withLock(r.key, async (lease) => {
            lockSpan.end({ "broker.lock_acquired": true });
            // Re-read under the lock: another replica may have just refreshed.
            const fresh = await store.get(r.key);
            if (!this.#wantsFetch(r, fresh)) return skip(fresh);
            return this.#writer.fetchAndWrite(r, fresh, lease);
          })
          .finally(() => lockSpan.end({ "broker.lock_acquired": false }));
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
        await inSpan("refresh wait for another replica", { "broker.app_id": r.key.appId }, () =>
          watch.wait(Math.min(leftMs, locked.leaseRemainingMs + LEASE_MARGIN_MS)),
        );
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

  /**
   * The request's precondition, and for a caller's cold-path run not a value
   * WeChat just re-confirmed: asking again before its time gets it again.
   */
  #wantsFetch(r: RefreshRequest, current: StoredCredential | undefined): boolean {
    if (!preconditionHolds(r, current, this.o.clock)) return false;
    return !(r.unlessServable && current && this.#confirmed.holds(r.key, current));
  }

  #emit(call: (events: RefreshEvents) => void): void {
    notify(this.o.events, this.o.logger, call);
  }
}
