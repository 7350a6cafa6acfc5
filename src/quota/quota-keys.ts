import { chinaDate } from "./china-day.js";
import { KEY_SEGMENTS, type QuotaEndpoint } from "./quota-ledger.js";

/**
 * Every Redis key of the quota ledger, under the broker's prefix (the same
 * one RedisKeys takes). All keys of one app share the hash tag
 * `{quota:<app>}`, so each script and multi-key command touches one Redis
 * Cluster slot. Keys carry the broker's app id, an endpoint name and a China
 * date; never a secret.
 */
export class QuotaKeys {
  constructor(readonly prefix: string) {}

  /** Counter: calls of `endpoint` on the China day containing `now`. */
  count(app: string, endpoint: QuotaEndpoint, now: number): string {
    return `${this.#app(app)}:count:${chinaDate(now)}:${segment(endpoint)}`;
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
}

function segment(endpoint: QuotaEndpoint): string {
  const name = KEY_SEGMENTS.get(endpoint);
  if (name === undefined) throw new TypeError(`quota: unknown endpoint '${endpoint}'`);
  return name;
}
