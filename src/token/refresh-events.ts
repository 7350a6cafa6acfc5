import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { CredentialKindSpec } from "../core/kind.js";
import type { BrokerError } from "../shared/errors.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";

/** Evidence that someone outside this broker fetches tokens for an app. */
export interface ForeignRefreshEvidence {
  readonly errcode: number;
  /** Fingerprint of the token WeChat rejected (ours, current until the report). */
  readonly rejectedFingerprint: string;
  /** How old it was and how long it should still have lived, in seconds. */
  readonly ageSeconds: number;
  readonly remainingSeconds: number;
  readonly version: number;
  /** The client whose report showed it: a client that reports tokens WeChat never rejected looks the same. */
  readonly reportedBy?: string;
}

/**
 * What the token core reports for metrics and alerts. Every callback is
 * optional and must not throw (a throwing observer is logged and ignored).
 */
export interface RefreshEvents {
  refreshed?(
    key: CredentialKey,
    credential: StoredCredential,
    reason: RefreshReason,
    degraded: boolean,
  ): void;
  unchanged?(key: CredentialKey, reason: RefreshReason): void;
  failed?(key: CredentialKey, error: BrokerError, reason: RefreshReason): void;
  /** Another replica held the refresh lock; this one waited for its result. */
  lockWaited?(key: CredentialKey, seconds: number, gotResult: boolean): void;
  /** Our current token was rejected long before its expiry: another party fetched one. */
  foreignRefresh?(key: CredentialKey, evidence: ForeignRefreshEvidence): void;
}

/** Calls an observer, if any; one that throws is logged and ignored (a metric must not fail a refresh). */
export function notify(
  events: RefreshEvents | undefined,
  logger: Logger,
  call: (events: RefreshEvents) => void,
): void {
  if (!events) return;
  try {
    call(events);
  } catch (err) {
    logger.error({ err }, "a refresh observer threw");
  }
}

/** Why a refresh ran. */
export type RefreshReason =
  | "cold"
  | "expired"
  | "scheduled"
  | "invalidate"
  | "ticket-dependency"
  | "force"
  | "grant";

/**
 * Our current value of a rotating kind was rejected as superseded (for an
 * access token: 40001/40014) long before its own refresh was due. Only
 * another fetch for the appid does that:
 * some other party (an old deployment, a tool, a second broker) is fetching
 * tokens and will keep breaking this fleet's token. Returns the evidence, or
 * undefined when the report does not show that.
 */
export function foreignRefreshEvidence(
  spec: CredentialKindSpec,
  rejected: StoredCredential,
  errcode: number,
  now: number,
  marginMs: number,
): ForeignRefreshEvidence | undefined {
  if (!spec.rotation?.supersededErrcodes.includes(errcode)) return undefined;
  const remainingMs = rejected.expiresAt - now;
  if (remainingMs <= marginMs) return undefined; // near its end anyway
  return {
    errcode,
    rejectedFingerprint: fingerprint(rejected.value),
    ageSeconds: Math.round((now - rejected.fetchedAt) / 1000),
    remainingSeconds: Math.round(remainingMs / 1000),
    version: rejected.version,
  };
}
