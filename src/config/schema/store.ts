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

/** Where credentials live: in this process (the default), or in Redis shared by replicas. */
export function storeSchema() {
  return tagged("type", "memory", [memory, redis]);
}
