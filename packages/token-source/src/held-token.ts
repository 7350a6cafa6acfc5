import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Token } from "./gen/tokenbroker/v1/token_service_pb.js";

/** One version of the credential as the source holds it. Times are this machine's epoch ms. */
export interface HeldToken {
  /** The credential. A secret: never log it (log `fingerprint`). */
  readonly value: string;
  readonly version: bigint;
  readonly fingerprint: string;
  /** When WeChat stops accepting it; the source never hands it out after this. */
  readonly expiresAt: number;
  /** When the broker replaces it; from then on the source looks for the newer version. */
  readonly refreshAfter: number;
  readonly fetchedAt: number;
  /** The broker could not replace it when planned (WeChat failing): still valid until `expiresAt`. */
  readonly refreshOverdue: boolean;
  /** Until when the version this one replaced still works (from a stream update), when known. */
  readonly previousValidUntil?: number;
  /** Per-user tokens: when the user's grant ends and they must authorize again. */
  readonly refreshExpiresAt?: number;
}

/** fresh: before refresh_after; stale: past it (or overdue) but valid; expired: none valid. */
export type TokenState = "fresh" | "stale" | "expired";

/** Clocks further apart than this are corrected for, using the relative `expires_in`. */
const SKEW_TOLERANCE_MS = 2_000;

/**
 * A Token from the broker in local time. `expires_in` is relative, so when
 * this machine's clock is off the broker's by more than a little, the
 * absolute times are shifted by the difference: a slow local clock must not
 * serve a token past its end.
 */
export function heldFrom(t: Token, now: number, previousValidUntil?: number): HeldToken {
  if (!t.expiresAt) throw new Error("the broker sent a token without expires_at");
  const expiresAt = timestampMs(t.expiresAt);
  const byLifetime = now + Number(t.expiresIn) * 1000;
  const skew = Math.abs(expiresAt - byLifetime) > SKEW_TOLERANCE_MS ? expiresAt - byLifetime : 0;
  const local = (ms: number) => ms - skew;
  return {
    value: t.value,
    version: t.version,
    fingerprint: t.fingerprint,
    expiresAt: local(expiresAt),
    // A broker without refresh_after: look for a newer version at 80 % of its remaining life.
    refreshAfter: t.refreshAfter
      ? local(timestampMs(t.refreshAfter))
      : Math.floor(now + (local(expiresAt) - now) * 0.8),
    fetchedAt: t.fetchedAt ? local(timestampMs(t.fetchedAt)) : now,
    refreshOverdue: t.refreshOverdue,
    ...(previousValidUntil === undefined ? {} : { previousValidUntil: local(previousValidUntil) }),
    ...(t.refreshExpiresAt ? { refreshExpiresAt: local(timestampMs(t.refreshExpiresAt)) } : {}),
  };
}

/**
 * Whether `next` should replace `held`: a higher version, or (a broker whose
 * store was reset numbers from 1 again) another value fetched later.
 */
export function isNewer(next: HeldToken, held: HeldToken): boolean {
  if (next.version > held.version) return true;
  return next.value !== held.value && next.fetchedAt > held.fetchedAt;
}

export function stateOf(held: HeldToken | undefined, now: number): TokenState {
  if (!held || now >= held.expiresAt) return "expired";
  return now >= held.refreshAfter || held.refreshOverdue ? "stale" : "fresh";
}
