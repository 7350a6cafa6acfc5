/**
 * Longest label value we export. App ids, kinds, endpoints and errcodes are
 * far shorter; an access token (~150 characters) or a ticket is not, so a
 * value passed here by mistake is replaced instead of published on /metrics.
 * It also caps the cost of an unexpected high-cardinality value.
 */
const MAX_LABEL_LENGTH = 64;

/** What an over-long label value is replaced with. */
export const OVERLONG_LABEL = "_overlong_";

/** A label value safe to export: short values as they are, others replaced. */
export function safeLabel(value: string): string {
  return value.length <= MAX_LABEL_LENGTH ? value : OVERLONG_LABEL;
}
