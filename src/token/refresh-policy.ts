import type { StoredCredential } from "../core/credential.js";
import type { CredentialKindSpec, KindAccount, KindMargins } from "../core/kind.js";

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

/**
 * One credential's rules: its kind's margins on this account, the broker's
 * policy, and how its fetch treats the value it replaces. Pure functions of
 * the credential, the time and (for jitter) a random number.
 */
export class CredentialRules {
  readonly margins: KindMargins;
  /** Every fetch of this credential ends the previous value `overlapMs` later (classic tokens). */
  readonly rotatesOnEveryFetch: boolean;

  constructor(
    readonly spec: CredentialKindSpec,
    readonly account: KindAccount,
    readonly policy: RefreshPolicy,
  ) {
    this.margins = spec.margins(account, policy);
    this.rotatesOnEveryFetch = spec.rotation?.onEveryFetch(account) ?? false;
  }

  /** How close to expiry a credential stops being handed out. */
  safetyMs(c: StoredCredential): number {
    return Math.min(this.margins.minRemainingMs, lifetimeMs(c) * 0.05);
  }

  /** True when the credential may be handed out at `now`. */
  isServable(c: StoredCredential, now: number): boolean {
    return c.expiresAt - this.safetyMs(c) > now;
  }

  /**
   * When to refresh proactively: `margin` before expiry, minus up to
   * `jitterRatio × margin` at random (`random` in [0, 1)).
   */
  refreshAt(c: StoredCredential, random: number): number {
    const margin = Math.min(
      this.margins.refreshMarginMs,
      lifetimeMs(c) * this.policy.maxMarginRatio,
    );
    // Whole milliseconds: due times end up in protobuf Timestamps.
    return Math.floor(c.expiresAt - margin - margin * this.policy.jitterRatio * random);
  }

  /**
   * The end of a credential's life as told to clients (§12 C3). A classic
   * token dies 300 s after the next fetch of /cgi-bin/token, and the broker
   * fetches at its own refresh time `rotationAt` (refreshAt) or, if that has
   * passed without a rotation, at any moment from `now` on. So its end is
   * min(expiry, max(rotationAt, now) + overlap). Credentials not ended by the
   * broker's next fetch keep their expiry.
   */
  reportedExpiresAt(c: StoredCredential, rotationAt: number, now: number): number {
    const overlapMs = this.spec.rotation?.overlapMs;
    if (!this.rotatesOnEveryFetch || overlapMs === undefined) return c.expiresAt;
    return Math.min(c.expiresAt, Math.max(rotationAt, now) + overlapMs);
  }

  /** Until when the value a fetch at `fetchedAt` replaced keeps working at WeChat. */
  replacedValidUntil(replaced: StoredCredential, fetchedAt: number): number {
    const overlapMs = this.spec.rotation?.overlapMs;
    return overlapMs === undefined
      ? replaced.expiresAt
      : Math.min(replaced.expiresAt, fetchedAt + overlapMs);
  }

  /**
   * When to try again after WeChat returned the value already stored. Tickets
   * (and WeCom tokens) are re-issued only at expiry, so wait until the
   * credential stops being servable, and once it has, until it expires:
   * asking in between gets the same value. A stable token asked too early
   * halves the distance to its end, converging on its rotation window. Never
   * less than the first retry delay.
   */
  nextAttemptAfterSameValue(c: StoredCredential, now: number): number {
    const unservableAt = c.expiresAt - this.safetyMs(c);
    if (this.spec.sameValueRetry === "converge") {
      return Math.floor(Math.max(now + this.policy.retryInitialMs, now + (unservableAt - now) / 2));
    }
    return Math.max(
      now + this.policy.retryInitialMs,
      now < unservableAt ? unservableAt : c.expiresAt,
    );
  }
}

function lifetimeMs(c: StoredCredential): number {
  return Math.max(0, c.expiresAt - c.fetchedAt);
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
