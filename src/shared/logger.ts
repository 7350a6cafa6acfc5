import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/**
 * Field names that may carry credentials. pino redacts top-level keys and one
 * level of nesting per path, so each level we log is listed explicitly.
 * The code never logs these on purpose; this is the safety net.
 */
const SECRET_FIELDS = [
  "secret",
  "appSecret",
  "app_secret",
  "accessToken",
  "access_token",
  "token",
  "value",
  "ticket",
  "authorization",
] as const;

const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]);

export interface LoggerOptions {
  level?: string;
  /** Bound into every line (e.g. `{ mode: "demo" }`). */
  base?: Record<string, unknown>;
  /** Where lines go; defaults to stdout. Tests pass a sink to read them back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

/**
 * The audit stream: one JSON line per intervention or refusal (who, what,
 * when, from where), separate from the operational log so it can be shipped
 * and retained on its own terms. Same redaction as the main log.
 */
export function createAuditLogger(
  destination: "stderr" | "stdout" | { file: string } | DestinationStream,
  base: Record<string, unknown> = {},
): Logger {
  const dest =
    destination === "stderr"
      ? pino.destination({ dest: 2, sync: false })
      : destination === "stdout"
        ? pino.destination({ dest: 1, sync: false })
        : "file" in destination
          ? pino.destination({ dest: destination.file, mkdir: true, sync: false })
          : destination;
  return createLogger({ level: "info", base: { stream: "audit", ...base }, destination: dest });
}

/** A logger that drops everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
