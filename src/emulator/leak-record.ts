import { appendFileSync } from "node:fs";
import { join } from "node:path";

/**
 * TEST HOOK, off by default: the suite-wide leak scan
 * (test/leak-scan.global-setup.ts) sets this variable to a run directory.
 * While it is set, the emulator appends every AppSecret it is configured
 * with and every access token, ticket, user's refresh token and OAuth code it issues to
 * `<dir>/values-<pid>.ndjson`, and the scan then looks for those values in
 * every log line and Redis command the tests produced. Unset (always, outside
 * tests), recording does nothing. Never set it for a real deployment: the
 * file holds the values themselves.
 */
export const LEAK_RECORD_DIR_ENV = "TOKEN_BROKER_LEAK_RECORD_DIR";

/**
 * "refresh_token": a credential kind's private state (a user's refresh token);
 * "oauth_code": a user's one-time authorization code (never stored, never logged).
 */
export type LeakCandidateKind =
  | "secret"
  | "access_token"
  | "ticket"
  | "refresh_token"
  | "oauth_code";

const recorded = new Set<string>();

/** Appends `value` to the run directory's value list; a no-op unless the variable is set. */
export function recordLeakCandidate(kind: LeakCandidateKind, value: string): void {
  const dir = process.env[LEAK_RECORD_DIR_ENV];
  if (!dir || value === "" || recorded.has(value)) return;
  recorded.add(value);
  try {
    appendFileSync(
      join(dir, `values-${process.pid}.ndjson`),
      `${JSON.stringify({ kind, value })}\n`,
    );
  } catch {
    // The scan reports what it has; a test hook must not break the emulator.
  }
}
