import type { CredentialKind, StoredCredential } from "./credential.js";

/**
 * When to refresh and when a cached credential may still be handed out.
 * Pure functions of the credential, the time and (for jitter) a random number,
 * so the boundaries are tested exhaustively without timers.
 */
export interface RefreshPolicy {
  /** Classic tokens and tickets: refresh this long before expiry. */
  readonly marginMs: number;
  /**
   * Stable tokens: refresh this long before expiry. WeChat rotates a stable
   * token only in its last 5 minutes (earlier calls return the same token),
   * so this must be below 300 s.
   */
  readonly stableMarginMs: number;
  /** The margin never exceeds this share of the lifetime (short lifetimes). */
  readonly maxMarginRatio: number;
  /** Up to this share of the margin is added at random, so replicas and apps spread out. */
  readonly jitterRatio: number;
  /**
   * An access token with less than this left is not handed out (a caller
   * needs time to use it); it is refreshed first. Capped at 5% of the lifetime.
   */
  readonly minRemainingMs: number;
  /**
   * Tickets are handed out until this close to expiry: WeChat returns the
   * same ticket until it expires (facts R19), so refreshing earlier is futile.
   */
  readonly ticketMinRemainingMs: number;
  /** Backoff after a failed refresh: first delay, cap, and the cap for config/quota errors. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly slowRetryMs: number;
}

export const DEFAULT_REFRESH_POLICY: RefreshPolicy = Object.freeze({
  marginMs: 10 * 60_000,
  stableMarginMs: 4 * 60_000,
  maxMarginRatio: 0.25,
  jitterRatio: 0.2,
  minRemainingMs: 30_000,
  ticketMinRemainingMs: 1_000,
  retryInitialMs: 1_000,
  retryMaxMs: 60_000,
  slowRetryMs: 5 * 60_000,
});

export type TokenMode = "classic" | "stable";

function lifetimeMs(c: StoredCredential): number {
  return Math.max(0, c.expiresAt - c.fetchedAt);
}

/** How close to expiry a credential stops being handed out. */
export function safetyMs(c: StoredCredential, kind: CredentialKind, policy: RefreshPolicy): number {
  if (kind !== "access_token") return Math.min(policy.ticketMinRemainingMs, lifetimeMs(c) * 0.05);
  return Math.min(policy.minRemainingMs, lifetimeMs(c) * 0.05);
}

/** True when the credential may be handed out at `now`. */
export function isServable(
  c: StoredCredential,
  kind: CredentialKind,
  now: number,
  policy: RefreshPolicy,
): boolean {
  return c.expiresAt - safetyMs(c, kind, policy) > now;
}

/**
 * When to refresh proactively: `margin` before expiry, minus up to
 * `jitterRatio × margin` at random (`random` in [0, 1)).
 */
export function refreshAt(
  c: StoredCredential,
  kind: CredentialKind,
  mode: TokenMode,
  policy: RefreshPolicy,
  random: number,
): number {
  const configured =
    kind === "access_token" && mode === "stable" ? policy.stableMarginMs : policy.marginMs;
  const margin = Math.min(configured, lifetimeMs(c) * policy.maxMarginRatio);
  // Whole milliseconds: due times end up in protobuf Timestamps.
  return Math.floor(c.expiresAt - margin - margin * policy.jitterRatio * random);
}

/** WeChat keeps a replaced classic token working this long after the next fetch (facts R7). */
const CLASSIC_OVERLAP_MS = 300_000;

/**
 * The end of a credential's life as told to clients (§12 C3). A classic
 * token dies 300 s after the next fetch of /cgi-bin/token, and the broker
 * fetches at its own refresh time `rotationAt` (refreshAt) or, if that has
 * passed without a rotation, at any moment from `now` on. So its end is
 * min(expiry, max(rotationAt, now) + 300 s). Stable tokens and tickets are
 * not killed by the broker's next fetch: their expiry stands.
 */
export function reportedExpiresAt(
  c: StoredCredential,
  kind: CredentialKind,
  mode: TokenMode,
  rotationAt: number,
  now: number,
): number {
  if (kind !== "access_token" || mode !== "classic") return c.expiresAt;
  return Math.min(c.expiresAt, Math.max(rotationAt, now) + CLASSIC_OVERLAP_MS);
}

/** Delay before retry number `attempt` (1-based) of a failed refresh, with ±20% jitter. */
export function retryDelayMs(
  attempt: number,
  slow: boolean,
  policy: RefreshPolicy,
  random: number,
): number {
  const base = slow
    ? policy.slowRetryMs
    : Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random));
}

/**
 * When to try again after WeChat returned the value already stored. Tickets
 * (and stable tokens outside their rotation window) are re-issued only near
 * expiry, so wait until the credential stops being servable, but never less
 * than the first retry delay.
 */
export function nextAttemptAfterSameValue(
  c: StoredCredential,
  kind: CredentialKind,
  now: number,
  policy: RefreshPolicy,
): number {
  const unservableAt = c.expiresAt - safetyMs(c, kind, policy);
  if (kind === "access_token") {
    // Stable token asked too early: halve the distance to the end, converging on its rotation window.
    return Math.floor(Math.max(now + policy.retryInitialMs, now + (unservableAt - now) / 2));
  }
  return Math.max(now + policy.retryInitialMs, unservableAt);
}
