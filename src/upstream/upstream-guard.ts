import {
  CircuitOpenError,
  QuotaRefusedError,
  ReportShareUsedError,
  UpstreamError,
} from "../core/upstream-error.js";
import type { QuotaDecision, QuotaEndpoint, QuotaLedger, QuotaPurpose } from "../quota/index.js";
import { type Clock, sleep, systemClock } from "../shared/clock.js";
import { StoreUnavailableError } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { inSpan, SpanKind } from "../shared/spans.js";
import { retryableInline, type UpstreamBreakers } from "./upstream-breakers.js";

// Importers of the guard's refusal before the errors moved to upstream-error.ts.
export { ReportShareUsedError };

/**
 * The WeChat endpoints the broker calls. The credential endpoints are metered
 * in the ledger under their own path; a quota clear is metered by its caller
 * (the admin service takes "clear_quota", with its gap, before calling).
 */
export type GuardedEndpoint =
  | Exclude<QuotaEndpoint, "force_refresh" | "clear_quota">
  | "/cgi-bin/clear_quota/v2";

/** What the guard needs of the quota ledger. */
export type QuotaGate = Pick<QuotaLedger, "take" | "blockUntilReset">;

export interface UpstreamGuardOptions {
  breakers: UpstreamBreakers;
  clock: Clock;
  logger: Logger;
  quota?: QuotaGate;
  /** Called after every attempt that reached WeChat (or was refused locally). */
  observe?: (app: string, endpoint: GuardedEndpoint, outcome: string, seconds: number) => void;
  /** Delays before inline retries of a WeChat fault, e.g. [200, 600], each jittered ±20 %. */
  retryDelaysMs?: readonly number[];
  /**
   * What inline retries wait on (default: the system clock). A caller is
   * waiting on them, so they run in real time even when `clock` is a fake one
   * that moves only when a test says so; a test that drives them passes its own.
   */
  retryClock?: Clock;
  /** Randomness in [0, 1) for the retry jitter (default Math.random). */
  random?: () => number;
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
       * What WeChat's 45009 blocks in the ledger (default: `endpoint`, when
       * the ledger meters it). A force refresh's 45009 is about the 20 forces
       * a day, not normal stable_token calls, so it blocks "force_refresh"
       * only (§12 C2).
       */
      blocks?: QuotaEndpoint;
      /** "report": may not use the share of the budget kept for scheduled refreshes. */
      purpose?: QuotaPurpose;
      /** The group whose shared budget the call also counts against (a WeCom app's corp). */
      group?: string;
    },
  ): Promise<T> {
    const delays = options.retries ? (this.o.retryDelaysMs ?? [200, 600]) : [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(
          app,
          endpoint,
          fn,
          options.blocks ?? meteredAs(endpoint),
          options.purpose ?? "any",
          options.group,
        );
      } catch (err) {
        const delay = delays[attempt];
        if (delay === undefined || !retryableInline(err) || options.signal.aborted) throw err;
        const random = this.o.random ?? Math.random;
        await sleep(
          this.o.retryClock ?? systemClock,
          delay * (0.8 + 0.4 * random()),
          options.signal,
        );
      }
    }
  }

  async #once<T>(
    app: string,
    endpoint: GuardedEndpoint,
    fn: () => Promise<T>,
    blocks: QuotaEndpoint | undefined,
    purpose: QuotaPurpose,
    group: string | undefined,
  ): Promise<T> {
    const { clock, quota } = this.o;
    const metered = meteredAs(endpoint);
    if (quota && metered) {
      const decision = await quota
        .take(app, metered, clock.now(), purpose, group)
        .catch((err: unknown) => {
          // A ledger outage must not stop token refreshes: fail open.
          if (!(err instanceof StoreUnavailableError)) throw err;
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
            decision.retryAt,
          );
        }
        throw new QuotaRefusedError(
          endpoint,
          decision.reason ?? "budget",
          refusalText(decision, until),
          decision.retryAt,
        );
      }
    }
    const started = clock.now();
    const attributes = { "broker.app_id": app, "wechat.endpoint": endpoint };
    try {
      const result = await inSpan(
        `wechat ${endpoint}`,
        attributes,
        async (span) => {
          try {
            return await this.o.breakers.run(app, endpoint, fn);
          } catch (err) {
            span.setAttribute("wechat.outcome", outcomeOf(err));
            throw err;
          }
        },
        SpanKind.CLIENT,
      );
      this.o.observe?.(app, endpoint, "ok", (clock.now() - started) / 1000);
      return result;
    } catch (err) {
      this.o.observe?.(app, endpoint, outcomeOf(err), (clock.now() - started) / 1000);
      if (err instanceof UpstreamError && blocksEndpoint(err) && quota && blocks) {
        await quota.blockUntilReset(app, blocks, clock.now(), group).catch(() => {});
      }
      throw err;
    }
  }
}

/**
 * WeChat's 45009 (a quota reached), and WeCom's 45033 (too many concurrent
 * calls, which its family reads as a limit), block the endpoint in the ledger.
 */
function blocksEndpoint(err: UpstreamError): boolean {
  return err.errcode === 45009 || (err.errcode === 45033 && err.category === "quota");
}

/** Why the ledger refused, in words a person can act on. */
function refusalText(d: QuotaDecision, until: string): string {
  const whose =
    d.group === undefined ? "this broker's" : `corp ${d.group}'s (all its apps together)`;
  const per = d.window === undefined ? "daily" : d.window === "hour" ? "hourly" : "per-minute";
  if (d.reason === "blocked") {
    return d.window === undefined
      ? `not called: WeChat answered 45009 (daily quota reached) earlier today; blocked${until}`
      : `not called: WeCom answered a frequency limit (45009/45033) for ${d.group === undefined ? "this app" : `corp ${d.group}`}; blocked${until}`;
  }
  return `not called: ${whose} ${per} budget of ${d.budget} calls is used up${until}`;
}

/** The ledger's name for a call of `endpoint`; undefined when its caller meters it. */
function meteredAs(endpoint: GuardedEndpoint): QuotaEndpoint | undefined {
  return endpoint === "/cgi-bin/clear_quota/v2" ? undefined : endpoint;
}

/** A metrics label for a failed call: the errcode, or what went wrong below the API. */
function outcomeOf(err: unknown): string {
  if (!(err instanceof UpstreamError)) return "aborted";
  const f = err.failure;
  switch (f.kind) {
    case "errcode":
      return String(f.errcode);
    case "http":
      return `http_${f.status}`;
    case "timeout":
      return "timeout";
    case "not_called":
      return err instanceof CircuitOpenError ? "circuit_open" : "refused_locally";
    default:
      // An answer that is not WeChat's JSON (a proxy's error page …) counts
      // with the connection failures: WeChat's API did not answer.
      return "network";
  }
}
