import type { QuotaPeriod, QuotaWindowSpec } from "../core/kind.js";
import { KEY_SEGMENTS, type QuotaEndpoint, WINDOWED } from "./quota-ledger.js";

/**
 * Fixed windows for the endpoints WeCom limits per minute and per hour
 * instead of per China day (facts §6.2), and how long its 45009 blocks.
 */

export const PERIOD_MS: Readonly<Record<QuotaPeriod, number>> = {
  minute: 60_000,
  hour: 3_600_000,
};

/** The window of `spec` containing `now`: [start, end), and its counter's name. */
export interface Window {
  readonly period: QuotaPeriod;
  readonly start: number;
  readonly end: number;
  readonly meter: string;
}

export function windowAt(spec: QuotaWindowSpec, segment: string, now: number): Window {
  const ms = PERIOD_MS[spec.period];
  const start = Math.floor(now / ms) * ms;
  return { period: spec.period, start, end: start + ms, meter: spec.meter ?? segment };
}

/** The window of a windowed endpoint containing `now`. */
export function endpointWindow(endpoint: QuotaEndpoint, now: number): Window {
  const spec = WINDOWED.get(endpoint);
  const segment = KEY_SEGMENTS.get(endpoint);
  if (!spec || segment === undefined) throw new TypeError(`quota: '${endpoint}' is not windowed`);
  return windowAt(spec, segment, now);
}

/**
 * When a block for WeCom's 45009 (or 45033) ends. Its answer does not say
 * which limit was hit; a minute-level block lifts after 60 s, an hour-level
 * one after an hour (facts §6.2). So the first block is a minute, and a
 * limit hit again within the hour after a block ended is taken as the hour's.
 * A block still running (another replica set it a moment ago) is kept as is.
 *
 * @param previous when the endpoint's last block ended (0: none remembered)
 */
export function windowedBlockEnd(previous: number, now: number): number {
  if (previous > now) return previous;
  if (previous > 0 && now - previous < PERIOD_MS.hour) return now + PERIOD_MS.hour;
  return now + PERIOD_MS.minute;
}

/** How long a windowed block's end stays readable after it: long enough to escalate. */
export const BLOCK_MEMORY_MS = PERIOD_MS.hour;
