/**
 * WeChat's `errmsg` is text the broker does not control: it has been seen to
 * echo request parameters. Everything the broker derives from it (error
 * messages, log lines, alerts, caller statuses) goes through here first.
 */

/** What a scrubbed AppSecret reads as. */
export const SECRET_MARKER = "[appsecret]";
/** What a scrubbed token or ticket reads as. */
export const CREDENTIAL_MARKER = "[credential]";
/** What any other long opaque string reads as. */
export const OPAQUE_MARKER = "[redacted]";

/** Longest scrubbed errmsg kept (WeChat's own texts are far shorter). */
export const MAX_ERRMSG_CHARS = 200;

/**
 * Runs of 32+ token-like characters: an AppSecret is 32 hex digits and
 * tokens are longer, while WeChat's own texts (the `rid` suffix, IPs, short
 * URLs) have no such run. This catches values the broker does not know, e.g.
 * another app's token.
 */
const OPAQUE_RUN = /[A-Za-z0-9_\-+/=]{32,}/g;

export interface ScrubValues {
  /** The app's AppSecret(s). */
  readonly secrets: readonly string[];
  /** Credential values the broker knows for the app (current and previous). */
  readonly credentials: readonly string[];
}

/**
 * Replaces every known secret and credential value with a marker, then any
 * remaining long opaque run, and only then truncates, so a cut can never
 * leave part of a value behind.
 */
export function scrubErrmsg(text: string, values: ScrubValues): string {
  let out = text;
  // Longest first, so a value containing another is replaced whole.
  const known = [
    ...values.secrets.map((v) => [v, SECRET_MARKER] as const),
    ...values.credentials.map((v) => [v, CREDENTIAL_MARKER] as const),
  ]
    .filter(([v]) => v.length > 0)
    .sort((a, b) => b[0].length - a[0].length);
  for (const [value, marker] of known) out = out.split(value).join(marker);
  out = out.replace(OPAQUE_RUN, OPAQUE_MARKER);
  return out.length > MAX_ERRMSG_CHARS ? `${out.slice(0, MAX_ERRMSG_CHARS)}…` : out;
}
