import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Clock } from "../shared/clock.js";
import { type AppliedSample, registerAppliedGauges } from "./applied-gauges.js";
import { safeLabel } from "./label.js";
import {
  type CredentialSample,
  type QuotaSample,
  registerCredentialGauges,
  registerQuotaGauges,
} from "./scrape-gauges.js";

export type { AppliedSample, CredentialSample, QuotaSample };

/** RPC latency, 0.1 ms (served from memory) to 10 s (waiting on upstream). */
const RPC_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** WeChat round trips: a few ms on a good day, up to the request timeout. */
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Waiting for the shared refresh lock: free at once, or a refresh's length. */
const LOCK_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type BreakerState = "closed" | "open" | "half_open";
export type RefreshOutcome = "refreshed" | "unchanged" | "skipped" | "failed" | "degraded";
export type AlertState = "firing" | "resolved";

/** Gauge values for breaker states: ordered by how bad they are. */
const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The broker's Prometheus metrics, in a registry of their own (never the
 * global one, so several brokers in one test process do not collide).
 * Callers record through typed methods; prom-client objects stay inside.
 *
 * Every label value is an app id, a kind, an endpoint or an errcode. Values
 * longer than a label can be (a token passed by mistake) are replaced.
 */
export class BrokerMetrics {
  readonly #registry = new Registry();
  readonly #rpcHandled: Counter<"service" | "method" | "code">;
  readonly #rpcDuration: Histogram<"service" | "method">;
  readonly #upstreamCalls: Counter<"endpoint" | "outcome">;
  readonly #upstreamDuration: Histogram<"endpoint">;
  readonly #breakerState: Gauge<"app" | "endpoint">;
  readonly #breakerTransitions: Counter<"app" | "endpoint" | "to">;
  readonly #watchStreams: Gauge;
  readonly #userTokensHeld: Gauge;
  readonly #refreshes: Counter<"app" | "kind" | "outcome">;
  readonly #lockWait: Histogram<"acquired">;
  readonly #alerts: Counter<"alert" | "state">;
  readonly #alertActive: Gauge<"alert">;
  /** Active alert instances per name (one name may fire for several apps). */
  readonly #activeAlerts = new Map<string, number>();
  #credentials: { read: () => readonly CredentialSample[]; clock: Clock } | undefined;
  #quota: (() => readonly QuotaSample[]) | undefined;
  #applied: { read: () => readonly AppliedSample[]; now: () => number } | undefined;

  constructor() {
    const registers = [this.#registry];
    collectDefaultMetrics({ register: this.#registry });
    this.#rpcHandled = new Counter({
      name: "tokenbroker_rpc_handled_total",
      help: "RPCs completed, by status code",
      labelNames: ["service", "method", "code"],
      registers,
    });
    this.#rpcDuration = new Histogram({
      name: "tokenbroker_rpc_duration_seconds",
      help: "Time to handle an RPC",
      labelNames: ["service", "method"],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.#upstreamCalls = new Counter({
      name: "tokenbroker_upstream_calls_total",
      help: "Calls to the WeChat API, by outcome (ok, an errcode, http_<status>, timeout, network)",
      labelNames: ["endpoint", "outcome"],
      registers,
    });
    this.#upstreamDuration = new Histogram({
      name: "tokenbroker_upstream_duration_seconds",
      help: "Duration of calls to the WeChat API",
      labelNames: ["endpoint"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.#breakerState = new Gauge({
      name: "tokenbroker_breaker_state",
      help: "Circuit breaker state: 0 closed, 1 half-open, 2 open",
      labelNames: ["app", "endpoint"],
      registers,
    });
    this.#breakerTransitions = new Counter({
      name: "tokenbroker_breaker_transitions_total",
      help: "Circuit breaker state changes, by the state entered",
      labelNames: ["app", "endpoint", "to"],
      registers,
    });
    this.#watchStreams = new Gauge({
      name: "tokenbroker_watch_streams",
      help: "Open WatchToken streams",
      registers,
    });
    // A count only: an openid is never a label.
    this.#userTokensHeld = new Gauge({
      name: "tokenbroker_user_tokens_held",
      help: "Users' tokens held in this replica's memory (bounded by cache.maxUserTokens)",
      registers,
    });
    this.#refreshes = new Counter({
      name: "tokenbroker_refresh_total",
      help: "Credential refresh attempts, by outcome",
      labelNames: ["app", "kind", "outcome"],
      registers,
    });
    this.#lockWait = new Histogram({
      name: "tokenbroker_lock_wait_seconds",
      help: "Time spent waiting for the shared refresh lock",
      labelNames: ["acquired"],
      buckets: LOCK_BUCKETS,
      registers,
    });
    this.#alerts = new Counter({
      name: "tokenbroker_alerts_total",
      help: "Alert state changes",
      labelNames: ["alert", "state"],
      registers,
    });
    this.#alertActive = new Gauge({
      name: "tokenbroker_alert_active",
      help: "Alert instances currently firing (one per app/kind it fires for)",
      labelNames: ["alert"],
      registers,
    });
    registerCredentialGauges(this.#registry, () => this.#credentials);
    registerQuotaGauges(this.#registry, () => this.#quota?.());
    registerAppliedGauges(this.#registry, () => this.#applied);
  }

  /** One finished RPC; `code` is the status name (e.g. "ok", "unavailable"). */
  rpcHandled(service: string, method: string, code: string, seconds: number): void {
    const labels = { service: safeLabel(service), method: safeLabel(method) };
    this.#rpcHandled.inc({ ...labels, code: safeLabel(code) });
    this.#rpcDuration.observe(labels, seconds);
  }

  /**
   * One call to WeChat. `outcome` is "ok", the errcode ("40125"),
   * "http_<status>", "timeout" or "network".
   */
  upstreamCall(endpoint: string, outcome: string, seconds: number): void {
    const e = safeLabel(endpoint);
    this.#upstreamCalls.inc({ endpoint: e, outcome: safeLabel(outcome) });
    this.#upstreamDuration.observe({ endpoint: e }, seconds);
  }

  /** The breaker's current state (set it at start and on every change). */
  breakerState(app: string, endpoint: string, state: BreakerState): void {
    this.#breakerState.set(
      { app: safeLabel(app), endpoint: safeLabel(endpoint) },
      BREAKER_VALUE[state],
    );
  }

  /** The breaker moved to `to`; also sets the state gauge. */
  breakerTransition(app: string, endpoint: string, to: BreakerState): void {
    this.#breakerTransitions.inc({ app: safeLabel(app), endpoint: safeLabel(endpoint), to });
    this.breakerState(app, endpoint, to);
  }

  /**
   * Where the credential gauges come from. `read` is called on every scrape
   * and the remaining/age values are computed against `clock` then.
   */
  setCredentialSource(read: () => readonly CredentialSample[], clock: Clock): void {
    this.#credentials = { read, clock };
  }

  /** Where the quota gauges come from; `read` is called on every scrape. */
  setQuotaSource(read: () => readonly QuotaSample[]): void {
    this.#quota = read;
  }

  /** Where the applied-version gauges come from; `read` is called on every scrape. */
  setAppliedSource(read: () => readonly AppliedSample[], clock: Clock): void {
    this.#applied = { read, now: () => clock.now() };
  }

  /** The number of open WatchToken streams. */
  watchers(n: number): void {
    this.#watchStreams.set(n);
  }

  userTokensHeld(n: number): void {
    this.#userTokensHeld.set(n);
  }

  refreshOutcome(app: string, kind: string, outcome: RefreshOutcome): void {
    this.#refreshes.inc({ app: safeLabel(app), kind: safeLabel(kind), outcome });
  }

  /** Time waited for the refresh lock, and whether it was obtained. */
  lockWait(seconds: number, acquired: boolean): void {
    this.#lockWait.observe({ acquired: String(acquired) }, seconds);
  }

  /**
   * An alert instance started or stopped firing. The active gauge counts
   * instances per alert name and never goes below zero.
   */
  alert(name: string, state: AlertState): void {
    const alert = safeLabel(name);
    this.#alerts.inc({ alert, state });
    const active = Math.max(
      0,
      (this.#activeAlerts.get(alert) ?? 0) + (state === "firing" ? 1 : -1),
    );
    this.#activeAlerts.set(alert, active);
    this.#alertActive.set({ alert }, active);
  }

  /** The Content-Type of `scrape()`'s output. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** All metrics in the Prometheus text format. */
  scrape(): Promise<string> {
    return this.#registry.metrics();
  }
}
