import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { FetchedCredential } from "../core/kind.js";
import type { Clock } from "../shared/clock.js";
import type { RefreshReason } from "./refresh-events.js";
import type { CredentialRules } from "./refresh-policy.js";

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
  /**
   * A credential obtained outside the kind's fetch (a user's grant from a
   * code exchange): stored under the lock as the next value, WeChat is not
   * called again.
   */
  readonly supplied?: FetchedCredential;
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

/** Whether `r` still wants a fetch given what is stored now (checked again under the lock). */
export function preconditionHolds(
  r: RefreshRequest,
  current: StoredCredential | undefined,
  clock: Clock,
): boolean {
  if (r.ifValue !== undefined && current?.value !== r.ifValue) return false;
  if (r.ifVersion !== undefined && (current?.version ?? 0) !== r.ifVersion) return false;
  if (r.unlessServable && current && r.rules.isServable(current, clock.now())) return false;
  return true;
}

/** The outcome of a run whose precondition no longer held: WeChat was not called. */
export function skip(credential: StoredCredential | undefined): RefreshOutcome {
  return { credential, fetched: false, changed: false };
}
