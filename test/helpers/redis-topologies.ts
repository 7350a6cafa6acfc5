import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, killOnExit, type RedisServer, startRedisServer } from "./redis-server.js";

/**
 * Sentinel and Cluster deployments made of real redis-server processes on
 * free loopback ports, for tests of the Redis store through
 * `connectRedis(parseRedisUrl(url))`. Every process is owned by the harness
 * and ended by `close()`; nothing is persisted.
 */

export const SENTINEL_MASTER_NAME = "broker";

export interface SentinelSetup {
  /** `redis-sentinel://127.0.0.1:p1,…/broker` */
  readonly url: string;
  /** The data nodes (master first at start; roles change on failover). */
  readonly servers: readonly RedisServer[];
  readonly sentinelPorts: readonly number[];
  /** Port of the master the sentinels name now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master; resolves with its port. */
  killMaster(): Promise<number>;
  /** Resolves once the sentinels name a master other than `port` (a failover completed). */
  waitForNewMaster(port: number, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * One master, one replica, three sentinels (quorum 2). Failure detection is
 * fast (`down-after-milliseconds` 1000, `failover-timeout` 3000). Resolves
 * once every sentinel knows the replica and the two other sentinels, so a
 * failover can be authorised as soon as the master dies.
 */
export async function startSentinelSetup(): Promise<SentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), "broker-sentinel-"));
  const servers: RedisServer[] = [];
  const sentinels: ChildProcess[] = [];
  const sentinelPorts: number[] = [];
  const admins: Redis[] = [];

  async function close(): Promise<void> {
    for (const a of admins) a.disconnect();
    await Promise.all([...sentinels.map((p) => killAndWait(p)), ...servers.map((s) => s.stop())]);
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    // Redis 7 waits 5 s before a diskless full sync in case more replicas ask;
    // a replica rejoining after a failover should not wait on that.
    const data = ["--repl-diskless-sync-delay", "0"];
    const master = await startRedisServer(data);
    servers.push(master);
    servers.push(
      await startRedisServer([...data, "--replicaof", "127.0.0.1", String(master.port)]),
    );
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      // Sentinel rewrites its config file as it learns, so each gets its own.
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 1000`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 3000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          "",
        ].join("\n"),
      );
      const proc = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
      killOnExit(proc);
      proc.on("error", () => {}); // a missing binary already failed startRedisServer above
      sentinels.push(proc);
      sentinelPorts.push(port);
      admins.push(admin(port));
    }
    await until("sentinels know the replica and each other", 20_000, async () => {
      for (const a of admins) {
        const replicas = (await a.call("SENTINEL", "REPLICAS", SENTINEL_MASTER_NAME)) as unknown[];
        const peers = (await a.call("SENTINEL", "SENTINELS", SENTINEL_MASTER_NAME)) as unknown[];
        if (replicas.length !== 1 || peers.length !== 2) return false;
      }
      return true;
    });
  } catch (err) {
    await close();
    throw err;
  }

  const first = admins[0] as Redis;
  async function masterPort(): Promise<number> {
    const addr = (await first.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER_NAME)) as
      | [string, string]
      | null;
    if (!addr) throw new Error("the sentinels name no master");
    return Number(addr[1]);
  }

  return {
    url: `redis-sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",")}/${SENTINEL_MASTER_NAME}`,
    servers,
    sentinelPorts,
    masterPort,
    async killMaster() {
      const port = await masterPort();
      const server = servers.find((s) => s.port === port);
      if (!server) throw new Error(`no server on the master's port ${port}`);
      await server.stop("SIGKILL");
      return port;
    },
    async waitForNewMaster(port, timeoutMs = 15_000) {
      let now = port;
      await until("a failover", timeoutMs, async () => {
        now = await masterPort();
        return now !== port;
      });
      return now;
    },
    close,
  };
}

export interface ClusterSetup {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  readonly url: string;
  readonly servers: readonly RedisServer[];
  close(): Promise<void>;
}

/**
 * Three masters (no replicas) with the 16384 slots split between them,
 * resolved once `CLUSTER INFO` says `cluster_state:ok` on every node. Slots
 * are assigned with CLUSTER ADDSLOTSRANGE and the nodes introduced with
 * CLUSTER MEET (what `redis-cli --cluster create` does, without its
 * one-second polling), so it needs only redis-server.
 */
export async function startClusterSetup(): Promise<ClusterSetup> {
  const dir = mkdtempSync(join(tmpdir(), "broker-cluster-"));
  const servers: RedisServer[] = [];
  const admins: Redis[] = [];

  async function close(): Promise<void> {
    for (const a of admins) a.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      servers.push(
        await startRedisServer(
          [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            join(dir, `nodes-${port}.conf`),
            "--cluster-node-timeout",
            "2000",
          ],
          port,
        ),
      );
      admins.push(admin(port));
    }
    const ranges: [number, number][] = [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ];
    await Promise.all(
      admins.map(async (a, i) => {
        const [from, to] = ranges[i] as [number, number];
        // Distinct epochs, so no node has to win an epoch collision first.
        await a.call("CLUSTER", "SET-CONFIG-EPOCH", String(i + 1));
        await a.call("CLUSTER", "ADDSLOTSRANGE", String(from), String(to));
      }),
    );
    const seed = admins[0] as Redis;
    for (const s of servers.slice(1))
      await seed.call("CLUSTER", "MEET", "127.0.0.1", String(s.port));
    await until("cluster_state:ok on every node", 20_000, async () => {
      for (const a of admins) {
        const info = String(await a.call("CLUSTER", "INFO"));
        if (!info.includes("cluster_state:ok") || !info.includes("cluster_known_nodes:3"))
          return false;
      }
      return true;
    });
  } catch (err) {
    await close();
    throw err;
  }

  return {
    url: `redis-cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(",")}`,
    servers,
    close,
  };
}

/** A connection for harness commands; retries quietly until the process listens. */
function admin(port: number): Redis {
  const redis = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  redis.on("error", () => {});
  return redis;
}

/** Polls `check` every 50 ms; rejects after `timeoutMs` naming `what`. Errors count as "not yet". */
async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killAndWait(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
  });
}
