import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/shared/logger.js";

/** A logger (debug level) whose JSON lines the test reads back. */
export function logSink(): {
  logger: Logger;
  text: () => string;
  lines: () => Array<Record<string, unknown>>;
} {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ level: "debug", destination: sink }),
    text: () => raw.join(""),
    lines: () =>
      raw
        .join("")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
