import {
  type CredentialKey,
  MAX_CREDENTIAL_LIFETIME_MS,
  type NewCredential,
  type StoredCredential,
} from "../core/credential.js";
import type { FetchedCredential } from "../core/kind.js";
import type { Lease } from "../core/ports/refresh-lock.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import { ReportShareUsedError, UpstreamError } from "../core/upstream-error.js";
import type { Clock } from "../shared/clock.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import { inSpan } from "../shared/spans.js";
import type { ConfirmedValues } from "./confirmed-values.js";
import type { KindFetcher } from "./kind-fetcher.js";
import { notify, type RefreshEvents } from "./refresh-events.js";
import type { RefreshFailures } from "./refresh-failures.js";
import type { CredentialRules, RefreshPolicy } from "./refresh-policy.js";
import type { RefreshOutcome, RefreshRequest } from "./refresh-request.js";
import { toBrokerError } from "./to-broker-error.js";

/** Where a refresh writes: the shared store, or (degraded) this replica only. */
export interface CasTarget {
  compareAndSet: TokenStore["compareAndSet"];
  localOnly: boolean;
}

export interface RefreshWriteDeps {
  readonly store: TokenStore;
  readonly fetcher: KindFetcher;
  readonly clock: Clock;
  readonly policy: RefreshPolicy;
  readonly logger: Logger;
  /** Aborted when the broker shuts down: cancels fetches in flight. */
  readonly signal: AbortSignal;
  readonly failures: RefreshFailures;
  /** Where a fetch that returned the stored value is remembered (see ConfirmedValues). */
  readonly confirmed?: ConfirmedValues;
  readonly events?: RefreshEvents | undefined;
  /** What this replica holds for `key`: the write is numbered above it. */
  localCredential(key: CredentialKey): StoredCredential | undefined;
  /** Receives credentials fetched while the store was unreachable. */
  onLocalWrite(update: CredentialUpdate): void;
  /** WeChat voided the grant `current`: delete it (Grants.voided). */
  onGrantVoid?(key: CredentialKey, current: StoredCredential): Promise<void>;
}

/**
 * The step of a refresh that holds the lock (or runs degraded without it):
 * one call to WeChat, its failure or success recorded, the new record built
 * and written by compare-and-set, and the result published to observers.
 */
export class RefreshWriter {
  #written = 0;

  constructor(private readonly d: RefreshWriteDeps) {}

  /** New credentials this process fetched and stored. */
  get written(): number {
    return this.#written;
  }

  async fetchAndWrite(
    r: RefreshRequest,
    current: StoredCredential | undefined,
    lease: Lease,
    target: CasTarget = {
      compareAndSet: (...a) => this.d.store.compareAndSet(...a),
      localOnly: false,
    },
  ): Promise<RefreshOutcome> {
    const { clock, policy, logger } = this.d;
    const startedAt = clock.now();
    const log = logger.child({ app: r.key.appId, kind: r.key.kind, reason: r.reason });
    let fetched: FetchedCredential;
    try {
      // A grant obtained outside the kind's fetch (a code exchange) is stored as is.
      fetched =
        r.supplied ??
        (await this.d.fetcher.fetch({
          rules: r.rules,
          key: r.key,
          current,
          signal: AbortSignal.any([this.d.signal, lease.signal]),
          retries: r.reason !== "scheduled",
          force: r.force === true,
          purpose: r.reason === "invalidate" ? "report" : "any",
        }));
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
      // A void grant is deleted everywhere; the caller is told to re-authorize.
      if (upstream?.category === "grant" && current && !target.localOnly) {
        await this.d.onGrantVoid?.(r.key, current);
      }
      const slow =
        upstream?.category === "config" ||
        upstream?.category === "quota" ||
        upstream?.category === "unknown";
      // A refused force refresh (20 a day) says nothing about normal refreshes
      // (§12 C2): the operator gets the error; callers are not held back.
      if (!r.force) {
        this.d.failures.failed(r.key, error, slow ? policy.retryMaxMs : policy.retryInitialMs);
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
    this.d.failures.succeeded(r.key);

    if (current && fetched.value === current.value && fetched.state === undefined) {
      log.info(
        { version: current.version, fingerprint: fingerprint(current.value) },
        "WeChat returned the current value",
      );
      this.d.confirmed?.confirmed(
        r.key,
        current.value,
        r.rules.nextAttemptAfterSameValue(current, clock.now()),
      );
      this.#emit((e) => e.unchanged?.(r.key, r.reason));
      return { credential: current, fetched: true, changed: false };
    }
    const next = nextRecord(r.rules, current, fetched, startedAt);
    // Numbered above what this replica remembers: a store that restarted
    // empty must not give this value the version of an older one.
    const minVersion = (this.d.localCredential(r.key)?.version ?? 0) + 1;
    const cas = await inSpan("store write", { "broker.app_id": r.key.appId }, async (span) => {
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
        cas = await target.compareAndSet(
          r.key,
          stored?.version ?? 0,
          lease.fence,
          next,
          minVersion,
        );
      }
      span.setAttributes(
        cas.written
          ? { "broker.written": true, "broker.version": cas.credential.version }
          : { "broker.written": false, "broker.refused": cas.reason },
      );
      return cas;
    });
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
    if (target.localOnly) this.d.onLocalWrite({ key: r.key, credential: cas.credential });
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

  #emit(call: (events: RefreshEvents) => void): void {
    notify(this.d.events, this.d.logger, call);
  }
}

/** The record to store for a fetched value (the store assigns its version). */
function nextRecord(
  rules: CredentialRules,
  current: StoredCredential | undefined,
  fetched: FetchedCredential,
  startedAt: number,
): NewCredential {
  // Expiry counts from when the request left: the credential was issued at
  // some point after that, so this errs on the early side.
  // Capped at what WeChat issues: the store refuses a record claiming more.
  const expiresAt =
    startedAt + Math.min(fetched.expiresInSeconds * 1000, MAX_CREDENTIAL_LIFETIME_MS);
  const previousValidUntil =
    current && current.value !== fetched.value
      ? rules.replacedValidUntil(current, startedAt)
      : undefined;
  // A kind's state (a refresh token) is kept unless its fetch returned a new one.
  const state = fetched.state ?? current?.state;
  const renewableUntil = fetched.renewableUntil ?? current?.renewableUntil;
  return {
    value: fetched.value,
    fetchedAt: startedAt,
    expiresAt,
    ...(previousValidUntil === undefined ? {} : { previousValidUntil }),
    ...(state === undefined ? {} : { state }),
    ...(renewableUntil === undefined ? {} : { renewableUntil }),
  };
}
