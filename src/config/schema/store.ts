import { z } from "zod";
import { num, strictMapping, tagged, text } from "../../shared/schema.js";
import { parseRedisUrl } from "../../store/redis/connection.js";

const memory = strictMapping({ type: z.literal("memory") });

const redis = strictMapping({
  type: z.literal("redis"),
  /** redis://, rediss://, redis-sentinel://…/master or redis-cluster:// (see connection.ts). */
  url: text().superRefine((url, ctx) => {
    try {
      parseRedisUrl(url);
    } catch (err) {
      // The URL may hold a password: the message names the key, never the value.
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  }),
  /** Prefix of every key and channel, so several brokers can share one Redis. */
  prefix: text()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1-64 characters: letters, digits, '_', '.', ':' or '-'")
    .prefault("tokenbroker"),
  /** Lease of the refresh lock; well under WeChat's 5-minute overlap. */
  lockTtlMs: num(1000, 120_000).prefault(30_000),
  /** How often each replica looks for due refreshes. */
  schedulePollMs: num(50, 60_000).prefault(1000),
});

const DAY_MS = 24 * 3_600_000;

/** One node's durable store: an SQLite file this process locks (store/sqlite/). */
const sqlite = strictMapping({
  type: z.literal("sqlite"),
  /** The database file, created with its folder if absent; relative to the working directory. */
  path: text("a file path").refine(
    (path) => path !== ":memory:" && !path.startsWith("file:"),
    "expected a file path (for a store that keeps nothing, use type: memory)",
  ),
  /** How long a credential is kept once it can neither be used nor renewed (for diagnosis), then purged. */
  retentionMs: num(0, 30 * DAY_MS).prefault(DAY_MS),
});

/**
 * Where credentials live: in this process (the default, kept nothing across
 * a restart), in an SQLite file (one node, durable), or in Redis shared by
 * replicas.
 */
export function storeSchema() {
  return tagged("type", "memory", [memory, sqlite, redis]);
}
