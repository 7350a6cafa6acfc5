import type { QuotaEndpoint, QuotaLedger, QuotaPurpose } from "../quota/index.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { isStoreUnavailable } from "../store/store-unavailable.js";
import { retryableInline, type UpstreamBreakers } from "./upstream-breakers.js";
import { UpstreamError } from "./upstream-error.js";

/** The WeChat endpoints the broker calls (the ledger also meters force refreshes and clears). */
export type GuardedEndpoint = Exclude<QuotaEndpoint, "force_refresh" | "clear_quota">;

/**
 * A refresh caused by a report was not called: reports have used their share
 * of the app's daily budget (the rest is kept for scheduled refreshes). Not a
 * WeChat failure: the credential stays as it is.
 */
export class ReportShareUsedError extends UpstreamError {
  constructor(endpoint: string, detail: string) {
    super(endpoint, detail, undefined, { category: "quota" });
    this.name = "ReportShareUsedError";
  }
}

/** What the guard needs of the quota ledger. */
export type QuotaGate = Pick<QuotaLedger, "take" | "blockUntilReset">;

export interface UpstreamGuardOptions {
  breakers: UpstreamBreakers;
  clock: Clock;
  logger: Logger;
  quota?: QuotaGate;
  /** Called after every attempt that reached WeChat (or was refused locally). */
  observe?: (app: string, endpoint: GuardedEndpoint, outcome: string, seconds: number) => void;
  /** Delays before inline retries of a WeChat fault, e.g. [200, 600]; real time (a caller is waiting). */
  retryDelaysMs?: readonly number[];
}

/**
 * Every call to WeChat goes through here: the app's daily budget is checked
 * (and 45009 blocks the endpoint until the day resets), the circuit breaker
 * of the app and endpoint decides whether WeChat is called at all, and a
 * caller-facing call retries WeChat's own faults (-1, 5xx, timeouts) a couple
 * of times with jittered backoff.
 */
export class UpstreamGuard {
  constructor(private readonly o: UpstreamGuardOptions) {}

  async call<T>(
    app: string,
    endpoint: GuardedEndpoint,
    fn: () => Promise<T>,
    options: {
      retries: boolean;
      signal: AbortSignal;
      /**
       * What WeChat's 45009 blocks in the ledger (default: `endpoint`). A
       * force refresh's 45009 is about the 20 forces a day, not normal
       * stable_token calls, so it blocks "force_refresh" only (§12 C2).
       */
      blocks?: QuotaEndpoint;
      /** "report": may not use the share of the budget kept for scheduled refreshes. */
      purpose?: QuotaPurpose;
    },
  ): Promise<T> {
    const delays = options.retries ? (this.o.retryDelaysMs ?? [200, 600]) : [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(
          app,
          endpoint,
          fn,
          options.blocks ?? endpoint,
          options.purpose ?? "any",
        );
      } catch (err) {
        const delay = delays[attempt];
        if (delay === undefined || !retryableInline(err) || options.signal.aborted) throw err;
        await realSleep(delay * (0.8 + 0.4 * Math.random()), options.signal);
      }
    }
  }

  async #once<T>(
    app: string,
    endpoint: GuardedEndpoint,
    fn: () => Promise<T>,
    blocks: QuotaEndpoint,
    purpose: QuotaPurpose,
  ): Promise<T> {
    const { clock, quota } = this.o;
    if (quota) {
      const decision = await quota
        .take(app, endpoint, clock.now(), purpose)
        .catch((err: unknown) => {
          // A ledger outage must not stop token refreshes: fail open.
          if (!isStoreUnavailable(err)) throw err;
          this.o.logger.warn(
            { app, endpoint },
            "quota ledger unreachable; calling WeChat uncounted",
          );
          return undefined;
        });
      if (decision && !decision.allowed) {
        this.o.observe?.(app, endpoint, "refused_locally", 0);
        const until = decision.retryAt ? ` until ${new Date(decision.retryAt).toISOString()}` : "";
        if (decision.reason === "reserved") {
          throw new ReportShareUsedError(
            endpoint,
            `not called: refreshes caused by InvalidateToken reports may use ${decision.budget} of this app's ` +
              `calls a day and have used them; the rest is kept for scheduled refreshes${until}`,
          );
        }
        throw new UpstreamError(
          endpoint,
          decision.reason === "blocked"
            ? `not called: WeChat answered 45009 (daily quota reached) earlier today; blocked${until}`
            : `not called: this broker's daily budget of ${decision.budget} calls is used up${until}`,
          undefined,
          { category: "quota" },
        );
      }
    }
    const started = clock.now();
    try {
      const result = await this.o.breakers.run(app, endpoint, fn);
      this.o.observe?.(app, endpoint, "ok", (clock.now() - started) / 1000);
      return result;
    } catch (err) {
      this.o.observe?.(app, endpoint, outcomeOf(err), (clock.now() - started) / 1000);
      if (err instanceof UpstreamError && err.errcode === 45009 && quota) {
        await quota.blockUntilReset(app, blocks, clock.now()).catch(() => {});
      }
      throw err;
    }
  }
}

/** A metrics label for a failed call: the errcode, or what went wrong below the API. */
function outcomeOf(err: unknown): string {
  if (!(err instanceof UpstreamError)) return "aborted";
  if (err.name === "CircuitOpenError") return "circuit_open";
  if (err.errcode !== undefined) return String(err.errcode);
  if (err.detail.startsWith("HTTP ")) return `http_${err.detail.slice(5)}`;
  if (err.detail.startsWith("no answer")) return "timeout";
  return "network";
}

function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
