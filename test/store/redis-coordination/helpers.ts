import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../../src/shared/logger.js";
import {
  connectRedis,
  parseRedisUrl,
  type RedisClient,
} from "../../../src/store/redis/connection.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";

/** A client as a replica would have it, with its own connection. */
export function connect(url: string, name: string): RedisClient {
  const client = connectRedis(parseRedisUrl(url), { connectionName: name, commandTimeoutMs: 1000 });
  client.on("error", () => {}); // outages are part of these tests
  return client;
}

/** Keys under a prefix of their own, so tests sharing a server never see each other's. */
export function freshKeys(): RedisKeys {
  return new RedisKeys(`t-${randomUUID().slice(0, 8)}`);
}

/** A logger whose lines the test can read back. */
export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ level: "debug", destination: sink }),
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits (real time) until `check` holds; fails after `timeoutMs`. */
export async function until(
  check: () => boolean,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
