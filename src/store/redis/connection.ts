import { Cluster, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

/** Where Redis is, parsed from one URL (see `parseRedisUrl`). */
export type RedisTarget =
  | {
      mode: "standalone";
      host: string;
      port: number;
      db: number;
      tls: boolean;
      username?: string;
      password?: string;
    }
  | {
      mode: "sentinel";
      sentinels: HostPort[];
      masterName: string;
      db: number;
      username?: string;
      password?: string;
    }
  | { mode: "cluster"; nodes: HostPort[]; tls: boolean; username?: string; password?: string };

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses the store URL:
 *   redis://[user:pass@]host:port[/db]       standalone (rediss:// for TLS)
 *   redis-sentinel://[user:pass@]h1:p1,h2:p2/masterName[/db]
 *   redis-cluster://[user:pass@]h1:p1,h2:p2   (rediss-cluster:// for TLS)
 * Throws with a message naming the problem; never echoes the password.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m =
    /^(rediss?|redis-sentinel|rediss?-cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/]+)(?:\/(.*))?$/.exec(
      url,
    );
  if (!m)
    throw new Error(
      "expected redis://host:port, redis-sentinel://host:port,…/master or redis-cluster://host:port,…",
    );
  const [, scheme = "", user, pass, hosts = "", path = ""] = m;
  const auth = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass ? { password: decodeURIComponent(pass) } : {}),
  };
  const list = hosts.split(",").map(parseHostPort);
  if (scheme === "redis" || scheme === "rediss") {
    if (list.length !== 1)
      throw new Error("a standalone URL names one host; use redis-cluster:// or redis-sentinel://");
    const [only] = list as [HostPort];
    return { mode: "standalone", ...only, db: parseDb(path), tls: scheme === "rediss", ...auth };
  }
  if (scheme === "redis-sentinel") {
    const [masterName = "", db = ""] = path.split("/");
    if (!masterName)
      throw new Error(
        "a sentinel URL needs the master name: redis-sentinel://h1:26379,h2:26379/mymaster",
      );
    return { mode: "sentinel", sentinels: list, masterName, db: parseDb(db), ...auth };
  }
  if (path) throw new Error("a cluster URL takes no database number");
  return { mode: "cluster", nodes: list, tls: scheme.startsWith("rediss"), ...auth };
}

function parseHostPort(s: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new Error(`'${s}' is not host:port`);
  return { host: m[1] ?? m[2] ?? "", port };
}

function parseDb(s: string): number {
  if (s === "") return 0;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 15)
    throw new Error(`'${s}' is not a database number (0-15)`);
  return n;
}

export interface ConnectOptions {
  /** Name shown in `CLIENT LIST`, to tell the broker's connections apart. */
  connectionName: string;
  /** How long a command may wait while disconnected before failing (ms). */
  commandTimeoutMs?: number;
}

/**
 * A client for the target. Commands issued while disconnected fail fast
 * instead of queueing without bound, so the broker can fall back to what it
 * holds in memory during an outage; reconnection is automatic.
 */
export function connectRedis(target: RedisTarget, o: ConnectOptions): RedisClient {
  const common: RedisOptions = {
    connectionName: o.connectionName,
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    commandTimeout: o.commandTimeoutMs ?? 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
  };
  switch (target.mode) {
    case "standalone":
      return new Redis({
        ...common,
        host: target.host,
        port: target.port,
        db: target.db,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {}),
      });
    case "sentinel":
      return new Redis({
        ...common,
        sentinels: target.sentinels,
        name: target.masterName,
        db: target.db,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
      });
    case "cluster":
      return new Cluster(target.nodes, {
        redisOptions: {
          ...common,
          ...(target.username ? { username: target.username } : {}),
          ...(target.password ? { password: target.password } : {}),
          ...(target.tls ? { tls: {} } : {}),
        },
        clusterRetryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
      });
  }
}

/** Closes a connection politely when it is up, at once when it is not (quit would wait). */
export async function quitOrDisconnect(connection: Redis | Cluster): Promise<void> {
  if (connection.status !== "ready") {
    connection.disconnect();
    return;
  }
  try {
    await connection.quit();
  } catch {
    connection.disconnect();
  }
}
