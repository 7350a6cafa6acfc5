import {
  type CredentialKey,
  describeKey,
  keyId,
  type StoredCredential,
} from "../core/credential.js";
import type { TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import { FailedPreconditionError, StoreUnavailableError } from "../shared/errors.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import { raceAbort } from "../shared/race-abort.js";
import type { CredentialCache } from "./credential-cache.js";
import { foreignRefreshEvidence, type RefreshEvents } from "./refresh-events.js";
import type { RefreshPolicy } from "./refresh-policy.js";
import type { Refresher, RefreshOutcome } from "./refresher.js";
import type { ReportBudget } from "./report-budget.js";
import type { Resolved } from "./rules-book.js";

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
  /** The subject of a per-user or per-tenant credential. */
  readonly subject?: string;
}

export interface InvalidationDeps {
  readonly store: TokenStore;
  readonly cache: CredentialCache;
  readonly refresher: Refresher;
  readonly budget: ReportBudget;
  readonly clock: Clock;
  readonly policy: RefreshPolicy;
  readonly logger: Logger;
  readonly events: RefreshEvents | undefined;
  /** Keeps a credential in L1 and plans its refresh. */
  remember(key: CredentialKey, credential: StoredCredential): void;
  /** The current credential, fetched (with serve-stale) when none is servable. */
  load(resolved: Resolved, key: CredentialKey, signal: AbortSignal): Promise<StoredCredential>;
}

/**
 * Compare-and-refresh after WeChat rejected a value: refresh only if the
 * reported value is still current (concurrent reports of one stale value
 * cause one fetch), within a per-credential budget of report-caused
 * refreshes, and raise the foreign-fetcher alarm when a rotating value was
 * superseded long before its time.
 */
export class Invalidation {
  constructor(private readonly d: InvalidationDeps) {}

  async run(
    resolved: Resolved,
    key: CredentialKey,
    rejectedValue: string,
    errcode: number,
    signal: AbortSignal,
    options: InvalidateOptions,
  ): Promise<InvalidateResult> {
    const d = this.d;
    const log = d.logger.child({
      app: key.appId,
      kind: key.kind,
      subject: key.subject,
      reporter: options.reporter,
    });
    const coldFetch = options.coldFetch ?? true;
    const answer = (known: StoredCredential | undefined) =>
      this.#currentOrFetch(resolved, key, known, signal, coldFetch);
    for (let attempt = 0; attempt < 2; attempt++) {
      const current = await this.#storedOrHeld(key);
      if (current) d.remember(key, current);
      if (current?.value !== rejectedValue) {
        log.debug(
          { errcode, rejected: fingerprint(rejectedValue) },
          "reported value is not current; nothing to do",
        );
        return { credential: await answer(current), outcome: "already_replaced" };
      }
      // Joining a refresh in flight costs nothing; starting one takes from the budget.
      const waitMs = d.refresher.isRunning(key) ? 0 : d.budget.take(keyId(key));
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
        return { credential: await answer(current), outcome: "rate_limited" };
      }
      const { promise, started } = d.refresher.run({
        rules: resolved.rules,
        key,
        reason: "invalidate",
        ifValue: rejectedValue,
      });
      const result = await raceAbort(promise, signal);
      // Read your writes: the store's notification of this write may come later.
      if (result.credential) d.remember(key, result.credential);
      const outcome = outcomeOf(result, started);
      if (outcome === "refreshed") this.#checkForeign(resolved, key, current, errcode, options);
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
      return { credential: await answer(result.credential), outcome };
    }
    const credential = coldFetch
      ? await d.load(resolved, key, signal)
      : await answer(d.cache.get(key));
    return { credential, outcome: "already_replaced" };
  }

  /**
   * The stored credential or, while the store is unreachable, what this
   * replica holds: a report is then judged against this replica's copy, and a
   * refresh runs degraded like GetToken's (see the refresher's outage policy).
   */
  async #storedOrHeld(key: CredentialKey): Promise<StoredCredential | undefined> {
    try {
      return await this.d.store.get(key);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      return this.d.cache.get(key);
    }
  }

  async #currentOrFetch(
    resolved: Resolved,
    key: CredentialKey,
    known: StoredCredential | undefined,
    signal: AbortSignal,
    coldFetch: boolean,
  ): Promise<StoredCredential> {
    if (known && known.expiresAt > this.d.clock.now()) return known;
    if (coldFetch) return this.d.load(resolved, key, signal);
    // The reporter may not read tokens: a fetch would be for nobody it serves.
    if (known) return known;
    throw new FailedPreconditionError(
      `the broker holds no ${describeKey(key)}, so there is nothing to invalidate; ` +
        "it is fetched when a client that may read it (get or watch) asks for it",
    );
  }

  #checkForeign(
    resolved: Resolved,
    key: CredentialKey,
    rejected: StoredCredential,
    errcode: number,
    options: InvalidateOptions,
  ): void {
    const { clock, policy, logger, events } = this.d;
    let evidence = foreignRefreshEvidence(
      resolved.rules.spec,
      rejected,
      errcode,
      clock.now(),
      policy.marginMs,
    );
    if (!evidence) return;
    if (options.reporter !== undefined) evidence = { ...evidence, reportedBy: options.reporter };
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
}

function outcomeOf(result: RefreshOutcome, started: boolean): InvalidateOutcome {
  if (result.declined) return "rate_limited";
  if (!result.fetched) return "already_replaced";
  if (!started) return "joined_refresh";
  return result.changed ? "refreshed" : "confirmed_current";
}
