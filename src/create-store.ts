import type { StoreConfig } from "./config/config.js";
import type { AppliedVersions } from "./core/ports/applied-versions.js";
import type { DueQueue } from "./core/ports/due-queue.js";
import type { ExchangeLedger } from "./core/ports/exchange-ledger.js";
import type { RefreshLock } from "./core/ports/refresh-lock.js";
import type { TokenStore } from "./core/ports/token-store.js";
import {
  MemoryQuotaLedger,
  type QuotaBudgets,
  type QuotaLedger,
  RedisQuotaLedger,
} from "./quota/index.js";
import type { Clock } from "./shared/clock.js";
import type { Logger } from "./shared/logger.js";
import type { Secret } from "./shared/secret.js";
import { LocalAppliedVersions } from "./store/memory/local-applied-versions.js";
import { LocalDueQueue } from "./store/memory/local-due-queue.js";
import { LocalExchangeLedger } from "./store/memory/local-exchange-ledger.js";
import { LocalRefreshLock } from "./store/memory/local-refresh-lock.js";
import { MemoryTokenStore } from "./store/memory-store.js";
import { connectRedis, parseRedisUrl } from "./store/redis/connection.js";
import { RedisKeys } from "./store/redis/keys.js";
import { RedisAppliedVersions } from "./store/redis/redis-applied-versions.js";
import { RedisDueQueue } from "./store/redis/redis-due-queue.js";
import { RedisExchangeLedger } from "./store/redis/redis-exchange-ledger.js";
import { RedisRefreshLock } from "./store/redis/redis-refresh-lock.js";
import { RedisTokenStore } from "./store/redis/redis-token-store.js";
import { parseEncryptionKeys, ValueCipher } from "./store/redis/value-cipher.js";
import { openSqliteStores } from "./store/sqlite/open-sqlite-stores.js";

/** The store with its refresh lock and schedule: cluster-wide for a shared store. */
export interface StoreBundle {
  readonly store: TokenStore;
  readonly lock: RefreshLock;
  readonly dueQueue: DueQueue;
  /** How long, in all, callers wait for other replicas holding a credential's refresh lock. */
  readonly lockWaitMs?: number;
  /** Daily upstream budgets, shared by all replicas when the store is. */
  readonly ledger: QuotaLedger;
  /** Users' OAuth code exchanges, claimed once across all replicas when the store is shared. */
  readonly exchangeLedger: ExchangeLedger;
  /** Which version each client instance uses (AckToken), shared by all replicas when the store is. */
  readonly applied: AppliedVersions;
  /** Resolves once the store hears its own writes (the Redis subscription is confirmed). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Builds the store the config names, with the quota ledger beside it. It sits
 * at the composition root, not in store/: choosing adapters from the config is
 * wiring, and the adapters must not depend on the config or the quota folder.
 * Redis connects lazily and reconnects on its own.
 */
export function createStore(
  config: StoreConfig,
  deps: {
    clock: Clock;
    logger: Logger;
    budgets?: QuotaBudgets;
    /** Token values are encrypted at rest with these (the first encrypts); none: stored as is. */
    encryptionKeys?: readonly { id: string; key: Secret }[];
    /** With keys: until then (epoch ms), values stored unencrypted are still read. */
    acceptPlaintextUntil?: number;
  },
): StoreBundle {
  const budgets = deps.budgets ?? {};
  const logger = deps.logger.child({ component: "store" });
  if (config.type === "memory") {
    const store = new MemoryTokenStore(logger);
    const ledger = new MemoryQuotaLedger({ budgets, clock: deps.clock });
    return {
      store,
      lock: new LocalRefreshLock(),
      dueQueue: new LocalDueQueue(deps.clock),
      ledger,
      exchangeLedger: new LocalExchangeLedger(deps.clock),
      applied: new LocalAppliedVersions(deps.clock),
      ready: async () => {},
      async close() {
        await ledger.close();
        await store.close();
      },
    };
  }
  if (config.type === "sqlite") return sqliteBundle(config, deps, logger);
  const client = connectRedis(parseRedisUrl(config.url), { connectionName: "token-broker" });
  // ioredis reports every failed reconnect as an "error" event; without a
  // listener it prints each one. One warning a minute is enough to tell the story.
  let lastWarning = 0;
  client.on("error", (err: Error) => {
    const now = deps.clock.now();
    if (now - lastWarning < 60_000) return;
    lastWarning = now;
    logger.warn({ err: err.message }, "Redis connection error; serving from memory and retrying");
  });
  const keys = new RedisKeys(config.prefix);
  const cipher = deps.encryptionKeys?.length
    ? new ValueCipher(
        parseEncryptionKeys(
          deps.encryptionKeys.map((k) => ({ id: k.id, key: k.key })),
          "security.encryptionKeys",
        ),
      )
    : undefined;
  if (!cipher)
    logger.warn("token values are stored in Redis unencrypted; set security.encryptionKeys");
  else if (deps.acceptPlaintextUntil !== undefined)
    logger.warn(
      { until: new Date(deps.acceptPlaintextUntil).toISOString() },
      "values stored unencrypted are still read until security.acceptPlaintextUntil; remove it once every credential has been refreshed",
    );
  const store = new RedisTokenStore({
    client,
    keys,
    logger,
    clock: deps.clock,
    ...(cipher ? { cipher } : {}),
    ...(cipher && deps.acceptPlaintextUntil !== undefined
      ? { acceptPlaintextUntil: deps.acceptPlaintextUntil }
      : {}),
  });
  const lock = new RedisRefreshLock({
    client,
    keys,
    clock: deps.clock,
    logger,
    ttlMs: config.lockTtlMs,
  });
  const ledger = new RedisQuotaLedger({
    client,
    prefix: config.prefix,
    budgets,
    clock: deps.clock,
    ownsClient: false,
  });
  const dueQueue = new RedisDueQueue({
    client,
    keys,
    clock: deps.clock,
    logger,
    pollMs: config.schedulePollMs,
  });
  // Outcomes hold users' access tokens: sealed like credential values.
  const exchangeLedger = new RedisExchangeLedger({
    client,
    keys,
    cipher,
    clock: deps.clock,
    ...(cipher && deps.acceptPlaintextUntil !== undefined
      ? { acceptPlaintextUntil: deps.acceptPlaintextUntil }
      : {}),
  });
  return {
    store,
    lock,
    dueQueue,
    ledger,
    exchangeLedger,
    applied: new RedisAppliedVersions({ client, keys, clock: deps.clock }),
    // How long callers wait, in all, for a live holder's write (two leases and
    // slack; the old three-round limit). A dead holder costs only what is left
    // of its lease: waiters try the lock again as soon as it can have expired.
    lockWaitMs: 2 * (config.lockTtlMs + 5000),
    ready: () => store.subscribed(),
    async close() {
      await dueQueue.close();
      await lock.close();
      await ledger.close();
      await store.close(); // quits the shared client
    },
  };
}

/**
 * One node on an SQLite file: the credentials and code exchanges are durable
 * there; the refresh lock, schedule and quota ledger stay in memory, as for
 * the memory store (one process owns the file; the schedule is planned anew
 * from the stored credentials at start; the quota count restarts, and
 * WeChat's own 45009 still stops an over-budget day).
 */
function sqliteBundle(
  config: Extract<StoreConfig, { type: "sqlite" }>,
  deps: Parameters<typeof createStore>[1],
  logger: Logger,
): StoreBundle {
  const cipher = deps.encryptionKeys?.length
    ? new ValueCipher(parseEncryptionKeys([...deps.encryptionKeys], "security.encryptionKeys"))
    : undefined;
  const sqlite = openSqliteStores({
    path: config.path,
    retentionMs: config.retentionMs,
    clock: deps.clock,
    logger,
    cipher,
    ...(cipher ? { acceptPlaintextUntil: deps.acceptPlaintextUntil } : {}),
  });
  const ledger = new MemoryQuotaLedger({ budgets: deps.budgets ?? {}, clock: deps.clock });
  return {
    store: sqlite.store,
    lock: new LocalRefreshLock(),
    dueQueue: new LocalDueQueue(deps.clock),
    ledger,
    exchangeLedger: sqlite.exchangeLedger,
    applied: new LocalAppliedVersions(deps.clock),
    ready: async () => {},
    async close() {
      await ledger.close();
      await sqlite.close();
    },
  };
}
