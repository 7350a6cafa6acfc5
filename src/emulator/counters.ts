import type { CounterSnapshot, EndpointCounter } from "./control-types.js";

/** The key used when a request named no known account. */
export const NO_APPID = "-";

/**
 * Calls per (endpoint, appid): every request to a WeChat API path is one
 * call, whatever its outcome, so tests can assert "the broker made exactly N
 * upstream fetches". Control endpoints are not counted. WeCom calls count
 * under the corpid and, apart (never in sums or snapshots), under
 * `<corpid>/<app>` too.
 */
export class CallCounters {
  readonly #byEndpoint = new Map<string, Map<string, EndpointCounter>>();
  /** Per-app counts of WeCom calls, by endpoint then `<corpid>/<app>`. */
  readonly #bySubAccount = new Map<string, Map<string, number>>();

  /** Counts a call; `sub` is the app within a WeCom corp, if known. Returns the account's counter. */
  call(endpoint: string, appid: string | undefined, sub?: string): EndpointCounter {
    let byApp = this.#byEndpoint.get(endpoint);
    if (!byApp) {
      byApp = new Map();
      this.#byEndpoint.set(endpoint, byApp);
    }
    const id = appid || NO_APPID;
    let counter = byApp.get(id);
    if (!counter) {
      counter = { calls: 0, successes: 0, errors: {}, faults: 0 };
      byApp.set(id, counter);
    }
    counter.calls += 1;
    if (sub !== undefined) {
      let subs = this.#bySubAccount.get(endpoint);
      if (!subs) {
        subs = new Map();
        this.#bySubAccount.set(endpoint, subs);
      }
      subs.set(sub, (subs.get(sub) ?? 0) + 1);
    }
    return counter;
  }

  /** Calls by one account (appid, corpid, or `<corpid>/<app>` for a WeCom app), or all. */
  count(endpoint: string, appid?: string): number {
    const byApp = this.#byEndpoint.get(endpoint);
    if (!byApp) return 0;
    if (appid !== undefined) {
      return byApp.get(appid)?.calls ?? this.#bySubAccount.get(endpoint)?.get(appid) ?? 0;
    }
    let total = 0;
    for (const counter of byApp.values()) total += counter.calls;
    return total;
  }

  /** A copy of every counter, with `quotaUsed` filled in where `quotaUsed` knows it. */
  snapshot(quotaUsed: (endpoint: string, appid: string) => number | undefined): CounterSnapshot {
    const out: CounterSnapshot = {};
    for (const [endpoint, byApp] of this.#byEndpoint) {
      const apps: Record<string, EndpointCounter> = {};
      for (const [appid, c] of byApp) {
        const used = quotaUsed(endpoint, appid);
        apps[appid] = {
          ...c,
          errors: { ...c.errors },
          ...(used === undefined ? {} : { quotaUsed: used }),
        };
      }
      out[endpoint] = apps;
    }
    return out;
  }

  clear(): void {
    this.#byEndpoint.clear();
    this.#bySubAccount.clear();
  }
}

/**
 * Adds one outcome: success (`undefined` or 0), an errcode, or a label such
 * as "http:502" for an injected HTTP failure.
 */
export function recordOutcome(
  counter: EndpointCounter,
  outcome: number | string | undefined,
): void {
  if (outcome === undefined || outcome === 0) {
    counter.successes += 1;
  } else {
    const k = String(outcome);
    counter.errors[k] = (counter.errors[k] ?? 0) + 1;
  }
}
