import { createHash } from "node:crypto";

/**
 * A short, non-reversible identifier of a secret value: the first 12 hex
 * characters of its SHA-256. Safe to log and to return to clients; two
 * fingerprints are equal when the values are (with overwhelming probability).
 */
export function fingerprint(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 12);
}
