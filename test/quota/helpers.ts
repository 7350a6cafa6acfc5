import { randomUUID } from "node:crypto";
import { connectRedis, parseRedisUrl, type RedisClient } from "../../src/store/redis/connection.js";

/** A prefix of its own, so tests sharing a server never see each other's keys. */
export function freshPrefix(): string {
  return `qt-${randomUUID().slice(0, 8)}`;
}

/** A client as a replica would have it (connectRedis's fail-fast settings). */
export function connect(url: string, name = "quota-test", commandTimeoutMs?: number): RedisClient {
  const client = connectRedis(parseRedisUrl(url), {
    connectionName: name,
    ...(commandTimeoutMs ? { commandTimeoutMs } : {}),
  });
  client.on("error", () => {}); // outages are part of these tests
  return client;
}

/** 2026-01-01 04:00 UTC = 12:00 in China; the China day ends at 16:00 UTC. */
export const NOON = Date.UTC(2026, 0, 1, 4, 0, 0);
export const MIDNIGHT = Date.UTC(2026, 0, 1, 16, 0, 0);
export const NEXT_MIDNIGHT = MIDNIGHT + 86_400_000;
