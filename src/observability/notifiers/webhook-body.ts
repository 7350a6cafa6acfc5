import type { AlertEvent } from "../alerts.js";

export type WebhookFormat = "generic" | "wecom";

/** Named in every generic payload so receivers can route on it. */
export const ALERT_SOURCE = "wechat-token-broker";

/** WeCom rejects markdown content over 4096 bytes. */
const WECOM_MAX_BYTES = 4096;

/**
 * The generic JSON payload. `app` and `kind` are null when the alert is not
 * about one, so every payload has the same keys.
 */
export function genericBody(event: AlertEvent): Record<string, unknown> {
  return {
    alert: event.name,
    state: event.state,
    severity: event.severity,
    app: event.app ?? null,
    kind: event.kind ?? null,
    summary: event.summary,
    details: event.details,
    at: new Date(event.at).toISOString(),
    source: ALERT_SOURCE,
  };
}

/**
 * A WeCom group robot message: a bold title with FIRING/RESOLVED, the
 * summary, app/kind, and the details as a list.
 * https://developer.work.weixin.qq.com/document/path/91770
 */
export function wecomBody(event: AlertEvent): {
  msgtype: "markdown";
  markdown: { content: string };
} {
  const firing = event.state === "firing";
  const color = firing ? (event.severity === "critical" ? "warning" : "comment") : "info";
  const lines = [
    `**<font color="${color}">${firing ? "FIRING" : "RESOLVED"}</font> ${event.name}** (${event.severity})`,
    event.summary,
  ];
  const scope = [
    event.app === undefined ? undefined : `app: ${event.app}`,
    event.kind === undefined ? undefined : `kind: ${event.kind}`,
  ].filter((s) => s !== undefined);
  if (scope.length > 0) lines.push(`> ${scope.join(", ")}`);
  lines.push(`> at: ${new Date(event.at).toISOString()}`);
  for (const [key, value] of Object.entries(event.details)) lines.push(`- ${key}: ${value}`);
  return { msgtype: "markdown", markdown: { content: truncateBytes(lines.join("\n")) } };
}

export function webhookBody(format: WebhookFormat, event: AlertEvent): unknown {
  return format === "wecom" ? wecomBody(event) : genericBody(event);
}

function truncateBytes(text: string): string {
  if (Buffer.byteLength(text) <= WECOM_MAX_BYTES) return text;
  // Cut whole code points so no character is split; "…" takes 3 bytes.
  const chars = [...text];
  while (Buffer.byteLength(chars.join("")) > WECOM_MAX_BYTES - 3) chars.splice(-32);
  return `${chars.join("")}…`;
}
