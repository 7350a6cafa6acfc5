import type { AlertEvent } from "../alerts.js";
import { ALERT_SOURCE } from "./webhook-body.js";

export interface EmailMessage {
  subject: string;
  text: string;
}

/**
 * One alert event as a plain-text mail: the subject says what changed
 * (FIRING or RESOLVED, the alert, its app and kind) so an inbox lists it
 * readably; the body carries the summary and the evidence (errcodes,
 * counts, fingerprints: never a secret or a full token).
 */
export function emailMessage(prefix: string, event: AlertEvent): EmailMessage {
  const firing = event.state === "firing";
  const scope = [event.app && `app ${event.app}`, event.kind && `kind ${event.kind}`]
    .filter(Boolean)
    .join(", ");
  const subject = [
    prefix,
    firing ? `FIRING (${event.severity})` : "RESOLVED",
    event.name,
    scope && `(${scope})`,
  ]
    .filter(Boolean)
    .join(" ");
  const lines = [
    event.summary,
    "",
    `alert:    ${event.name}`,
    `state:    ${event.state}`,
    `severity: ${event.severity}`,
    `app:      ${event.app ?? "-"}`,
    `kind:     ${event.kind ?? "-"}`,
    `at:       ${new Date(event.at).toISOString()}`,
  ];
  const details = Object.entries(event.details);
  if (details.length > 0) {
    lines.push("", "details:");
    for (const [key, value] of details) lines.push(`  ${key}: ${value}`);
  }
  lines.push(
    "",
    firing ? "You get one more mail when this condition clears." : "This condition has cleared.",
    `-- ${ALERT_SOURCE}`,
  );
  // Header injection: a subject is one line.
  return { subject: subject.replace(/[\r\n]+/g, " "), text: `${lines.join("\n")}\n` };
}
