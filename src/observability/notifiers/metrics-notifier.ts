import type { AlertEvent, Notifier } from "../alerts.js";
import type { BrokerMetrics } from "../metrics.js";

/**
 * Counts alert events in `tokenbroker_alerts_total` and
 * `tokenbroker_alert_active`. Use this or AlertManager's `metrics` option,
 * not both.
 */
export class MetricsNotifier implements Notifier {
  readonly #metrics: Pick<BrokerMetrics, "alert">;

  constructor(metrics: Pick<BrokerMetrics, "alert">) {
    this.#metrics = metrics;
  }

  async notify(event: AlertEvent): Promise<void> {
    this.#metrics.alert(event.name, event.state);
  }
}
