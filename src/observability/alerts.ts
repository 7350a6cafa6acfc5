import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AlertState, BrokerMetrics } from "./metrics.js";

export type { AlertState };
export type AlertSeverity = "critical" | "warning";
/** Evidence only: errcodes, counts, fingerprints. Never secrets or full tokens. */
export type AlertDetails = Record<string, string | number | boolean>;

/** One change of an alert's state, as handed to every notifier. */
export interface AlertEvent {
  /** Stable snake_case identifier, e.g. "upstream_config_error". */
  name: string;
  state: AlertState;
  severity: AlertSeverity;
  app?: string;
  kind?: string;
  /** A sentence for a human. */
  summary: string;
  details: AlertDetails;
  /** Epoch ms from the manager's clock. */
  at: number;
}

/** Somewhere alert events go. `signal` aborts when the manager stops waiting. */
export interface Notifier {
  notify(event: AlertEvent, signal?: AbortSignal): Promise<void>;
}

/** Which condition: the same name for another app or kind is another alert. */
export interface AlertKey {
  name: string;
  app?: string;
  kind?: string;
}

export interface AlertInfo {
  severity: AlertSeverity;
  summary: string;
  details: AlertDetails;
}

/** An alert that is firing now, for the status RPC. */
export interface ActiveAlert extends AlertKey, AlertInfo {
  /** When it started firing (epoch ms). */
  since: number;
  /** When it was last raised (epoch ms). */
  lastRaisedAt: number;
  /** How many times it was raised while active, the first included. */
  raises: number;
}

export interface AlertManagerOptions {
  notifiers: readonly Notifier[];
  clock: Clock;
  logger: Logger;
  /**
   * Counts alerts in `tokenbroker_alerts_total` / `tokenbroker_alert_active`.
   * Pass this or a MetricsNotifier, not both, or each change counts twice.
   */
  metrics?: Pick<BrokerMetrics, "alert">;
  /** How long one notifier may take for one event. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Turns "this condition holds" / "it no longer does" into one `firing` and
 * one `resolved` event per episode, delivered to every notifier at once.
 * Raising an active alert only refreshes what it says; resolving an inactive
 * one does nothing. Delivery never throws into the caller: a failing or slow
 * notifier is logged and, past the timeout, no longer waited for. Events for
 * one alert are delivered in order, so `resolved` never overtakes `firing`.
 */
export class AlertManager {
  readonly #o: AlertManagerOptions;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #active = new Map<string, ActiveAlert>();
  /** Tail of each alert's delivery chain, while one is in flight. */
  readonly #deliveries = new Map<string, Promise<void>>();

  constructor(options: AlertManagerOptions) {
    this.#o = options;
    this.#logger = options.logger.child({ component: "alerts" });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * The condition holds. Fires once; later raises update the stored
   * severity, summary and details without notifying. The promise settles
   * when this raise's delivery is done (at once if there is none); it never
   * rejects, so callers may ignore it.
   */
  raise(key: AlertKey, info: AlertInfo): Promise<void> {
    const id = alertId(key);
    const now = this.#o.clock.now();
    const current = this.#active.get(id);
    if (current) {
      Object.assign(current, info, {
        details: { ...info.details },
        lastRaisedAt: now,
        raises: current.raises + 1,
      });
      return Promise.resolve();
    }
    const details = { ...info.details };
    this.#active.set(id, {
      ...pickKey(key),
      ...info,
      details,
      since: now,
      lastRaisedAt: now,
      raises: 1,
    });
    return this.#emit(id, { ...pickKey(key), ...info, details, state: "firing", at: now });
  }

  /**
   * The condition has cleared. Sends `resolved` (with the last details) if
   * the alert was active; otherwise does nothing.
   */
  resolve(key: AlertKey, summary?: string): Promise<void> {
    const id = alertId(key);
    const current = this.#active.get(id);
    if (!current) return Promise.resolve();
    this.#active.delete(id);
    return this.#emit(id, {
      ...pickKey(key),
      severity: current.severity,
      summary: summary ?? `Resolved: ${current.summary}`,
      details: current.details,
      state: "resolved",
      at: this.#o.clock.now(),
    });
  }

  /** Alerts firing now, oldest first (copies). */
  active(): ActiveAlert[] {
    return [...this.#active.values()]
      .sort((a, b) => a.since - b.since)
      .map((a) => ({ ...a, details: { ...a.details } }));
  }

  /** Settles when every delivery started so far is done (for shutdown). */
  async drain(): Promise<void> {
    while (this.#deliveries.size > 0) await Promise.all(this.#deliveries.values());
  }

  #emit(id: string, event: AlertEvent): Promise<void> {
    this.#o.metrics?.alert(event.name, event.state);
    const previous = this.#deliveries.get(id) ?? Promise.resolve();
    const done = previous.then(() => this.#deliver(event));
    this.#deliveries.set(id, done);
    void done.then(() => {
      if (this.#deliveries.get(id) === done) this.#deliveries.delete(id);
    });
    return done;
  }

  async #deliver(event: AlertEvent): Promise<void> {
    const log = this.#logger.child({ alert: event.name, state: event.state });
    await Promise.all(
      this.#o.notifiers.map(async (notifier, index) => {
        const notifierName = notifierLabel(notifier, index);
        try {
          await this.#withTimeout((signal) => notifier.notify(event, signal));
        } catch (err) {
          // Notifiers build their own error messages without secrets or URLs;
          // only the message is logged, never the raw error object.
          log.error(
            { notifier: notifierName, reason: err instanceof Error ? err.message : String(err) },
            "alert notification failed",
          );
        }
      }),
    );
  }

  #withTimeout(run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const controller = new AbortController();
    return new Promise<void>((resolve, reject) => {
      const cancel = this.#o.clock.schedule(() => {
        const error = new Error(`timed out after ${this.#timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.#timeoutMs);
      Promise.resolve()
        .then(() => run(controller.signal))
        .then(resolve, reject)
        .finally(cancel);
    });
  }
}

/** A class's name, or the notifier's position for an object literal. */
function notifierLabel(notifier: Notifier, index: number): string {
  const ctor = (notifier as { constructor?: { name?: string } }).constructor;
  return ctor && ctor !== Object && ctor.name ? ctor.name : `notifiers[${index}]`;
}

function pickKey(key: AlertKey): AlertKey {
  const out: AlertKey = { name: key.name };
  if (key.app !== undefined) out.app = key.app;
  if (key.kind !== undefined) out.kind = key.kind;
  return out;
}

function alertId(key: AlertKey): string {
  return JSON.stringify([key.name, key.app ?? null, key.kind ?? null]);
}
