import type { Logger } from "../../shared/logger.js";
import type { AlertEvent, Notifier } from "../alerts.js";

/**
 * Writes each alert event as one structured log line: `error` for a
 * critical alert firing, `warn` for a warning firing, `info` when resolved.
 */
export class LogNotifier implements Notifier {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger.child({ component: "alert-log" });
  }

  async notify(event: AlertEvent): Promise<void> {
    const level =
      event.state === "resolved" ? "info" : event.severity === "critical" ? "error" : "warn";
    this.#logger[level](
      {
        name: event.name,
        state: event.state,
        severity: event.severity,
        app: event.app,
        kind: event.kind,
        details: event.details,
        at: new Date(event.at).toISOString(),
      },
      event.summary,
    );
  }
}
