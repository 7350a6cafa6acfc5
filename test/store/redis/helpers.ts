import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger, type Logger, silentLogger } from "../../../src/shared/logger.js";
import {
  connectRedis,
  parseRedisUrl,
  type RedisClient,
} from "../../../src/store/redis/connection.js";
import { RedisKeys } from "../../../src/store/redis/keys.js";
import { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";

/** Keys under a prefix of their own, so tests sharing a server never see each other's. */
export function freshKeys(): RedisKeys {
  return new RedisKeys(`ts-${randomUUID().slice(0, 8)}`);
}

/** A client as a replica would have it (connectRedis's fail-fast settings). */
export function connect(url: string, name: string): RedisClient {
  const client = connectRedis(parseRedisUrl(url), { connectionName: name });
  client.on("error", () => {}); // outages are part of these tests
  return client;
}

/** A store on its own connections, subscribed before it is handed out. */
export async function openStore(
  url: string,
  keys: RedisKeys,
  name: string,
  logger: Logger = silentLogger(),
): Promise<RedisTokenStore> {
  const store = new RedisTokenStore({ client: connect(url, name), keys, logger });
  await store.subscribed();
  return store;
}

/** A logger whose raw lines the test can read back. */
export function captureLogger(): { logger: Logger; text: () => string; messages: () => string[] } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ level: "debug", destination: sink }),
    text: () => raw.join(""),
    messages: () => raw.map((line) => String((JSON.parse(line) as { msg?: unknown }).msg)),
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits in real time until `check` holds; fails after `timeoutMs` naming `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** Every key in the current database (SCAN, not KEYS). */
export async function scanAll(client: RedisClient): Promise<string[]> {
  if (!("scanStream" in client)) throw new Error("scanAll takes a standalone client");
  const found: string[] = [];
  for await (const batch of client.scanStream({ count: 100 })) found.push(...(batch as string[]));
  return found;
}
