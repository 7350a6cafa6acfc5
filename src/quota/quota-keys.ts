import { chinaDate } from "./china-day.js";
import { KEY_SEGMENTS, type QuotaEndpoint } from "./quota-ledger.js";
import type { Window } from "./windows.js";

/**
 * Every Redis key of the quota ledger, under the broker's prefix (the same
 * one RedisKeys takes). All keys of one app share the hash tag
 * `{quota:<app>}`, so each script and multi-key command touches one Redis
 * Cluster slot; a group's (a WeCom corp's) keys share `{quota-group:<id>}`.
 * Keys carry the broker's app id or a corpid, an endpoint name and a China
 * date or a window's start; never a secret.
 */
export class QuotaKeys {
  constructor(readonly prefix: string) {}

  /** Counter: calls of `endpoint` on the China day containing `now`. */
  count(app: string, endpoint: QuotaEndpoint, now: number): string {
    return `${this.#app(app)}:count:${chinaDate(now)}:${segment(endpoint)}`;
  }

  /** Counter: the app's calls counted against `window`'s meter (WeCom's minute and hour limits). */
  windowCount(app: string, window: Window): string {
    return `${this.#app(app)}${windowSuffix(window)}`;
  }

  /** Counter: all calls of a group's apps in `window`. */
  groupWindowCount(group: string, window: Window): string {
    return `${this.#group(group)}${windowSuffix(window)}`;
  }

  /** String: epoch ms until which `endpoint` is blocked for every app of the group. */
  groupBlock(group: string, endpoint: QuotaEndpoint): string {
    return `${this.#group(group)}:block:${segment(endpoint)}`;
  }

  /** String: epoch ms until which `endpoint` is blocked after a 45009. */
  block(app: string, endpoint: QuotaEndpoint): string {
    return `${this.#app(app)}:block:${segment(endpoint)}`;
  }

  /** String: epoch ms of the last allowed force refresh. */
  lastForce(app: string): string {
    return `${this.#app(app)}:force:last`;
  }

  /** String: epoch ms of the last allowed quota clear. */
  lastClear(app: string): string {
    return `${this.#app(app)}:clear:last`;
  }

  #app(app: string): string {
    return `${this.prefix}:{quota:${app}}`;
  }

  #group(group: string): string {
    return `${this.prefix}:{quota-group:${group}}`;
  }
}

function segment(endpoint: QuotaEndpoint): string {
  const name = KEY_SEGMENTS.get(endpoint);
  if (name === undefined) throw new TypeError(`quota: unknown endpoint '${endpoint}'`);
  return name;
}

function windowSuffix(w: Window): string {
  return `:count:${w.period}:${w.start}:${w.meter}`;
}
