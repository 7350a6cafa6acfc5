/**
 * Users' grants at scale (issue 11): what a grant costs Redis and the SQLite
 * file next to an app's access-token record, what a broker holding 100,000
 * users' tokens in L1 costs in memory next to one holding none, and GetToken
 * for users with a warm L1 next to the app-token hot path, in the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetTokenRequestSchema, TokenKind } from "../gen/tokenbroker/v1/token_service_pb.js";
import type { Bench, BenchContext } from "./contract.js";
import { grpcFrame } from "./fanout-h2.js";
import { benchEncryptionKey, GRANTS_APP } from "./grant-records.js";
import { GET_TOKEN_PATH, GrantsChild, type LoadResult } from "./grants-protocol.js";
import { measureRedisGrants, writeUserGrants } from "./grants-redis.js";
import { type BrokerFigures, grantsSection, type LoadFigures } from "./grants-report.js";
import { measureSqliteGrants } from "./grants-sqlite.js";
import { hasTaskset } from "./lib/child.js";
import { runH2load } from "./lib/h2load.js";
import { startRedisServer } from "./lib/redis-server.js";

export interface GrantsPlan {
  /** Users' grants written to each store. */
  readonly grants: number;
  /** App access-token records written for the baseline. */
  readonly apps: number;
  /** cache.maxUserTokens, and how many users the broker is made to hold. */
  readonly held: number;
  /** Users GetToken cycles through under load (all held). */
  readonly warmUsers: number;
  /** Users whose grants another writer makes while the broker listens (more than `held`, to pass L1's bound). */
  readonly heardMore: number;
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

/**
 * 1,000,000 grants take the writer about 250 µs of CPU each through
 * RedisTokenStore (sealing, the script, the store's re-read of its own
 * hint): minutes on 2 cores. Full mode writes 200,000 and extrapolates;
 * BENCH_GRANTS_USERS=1000000 writes them all.
 */
const PLANS: Record<BenchContext["mode"], GrantsPlan> = {
  full: {
    grants: Number(process.env.BENCH_GRANTS_USERS ?? 200_000),
    apps: 10_000,
    held: 100_000,
    warmUsers: 5_000,
    heardMore: 200_000,
    rounds: 3,
    seconds: 5,
    warmupSeconds: 1,
  },
  smoke: {
    grants: 10_000,
    apps: 1_000,
    held: 2_000,
    warmUsers: 1_000,
    heardMore: 4_000,
    rounds: 1,
    seconds: 1,
    warmupSeconds: 1,
  },
};

const PREFIX = "bench-grants";
const BROKER_CPU = "0";
const LOAD_CPU = "1";

function childFlags(): string[] {
  return (process.env.GRANTS_CHILD_EXEC_ARGV ?? "").split(" ").filter((a) => a !== "");
}

function median(results: readonly LoadResult[]): LoadResult {
  const sorted = [...results].sort((a, b) => a.reqPerSec - b.reqPerSec);
  const m = sorted[Math.floor(sorted.length / 2)];
  if (!m) throw new Error("no rounds");
  return m;
}

/** User and app-token rounds, alternating so drift hits both alike; the median round of each. */
async function compareLoad(
  ctx: BenchContext,
  load: GrantsChild,
  plan: GrantsPlan,
): Promise<LoadFigures> {
  const results: Record<"user" | "app", LoadResult[]> = { user: [], app: [] };
  for (let r = 0; r < plan.rounds; r++) {
    for (const target of ["user", "app"] as const) {
      const result = await load.run({
        type: "load",
        target,
        from: 0,
        to: plan.warmUsers,
        seconds: plan.seconds,
        warmupSeconds: plan.warmupSeconds,
      });
      if (result.failed > 0 || result.calls === 0)
        throw new Error(`${target}: ${result.failed} failed, ${result.calls} succeeded`);
      ctx.log(
        `grants: round ${r + 1}/${plan.rounds} ${target}: ${Math.round(result.reqPerSec)} req/s, ` +
          `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`,
      );
      results[target].push(result);
    }
  }
  return { user: median(results.user), app: median(results.app) };
}

/** h2load on the app-token path, to tell whether the node client limits the figures above. */
async function h2loadCheck(port: number, plan: GrantsPlan): Promise<number | undefined> {
  if (spawnSync("h2load", ["--version"], { stdio: "ignore" }).status !== 0) return undefined;
  const body = grpcFrame(
    toBinary(
      GetTokenRequestSchema,
      create(GetTokenRequestSchema, { appId: GRANTS_APP.id, kind: TokenKind.ACCESS_TOKEN }),
    ),
  );
  const result = await runH2load({
    url: `http://127.0.0.1:${port}${GET_TOKEN_PATH}`,
    body,
    headers: { "content-type": "application/grpc", te: "trailers" },
    clients: 4,
    streams: 32,
    seconds: plan.seconds,
    warmupSeconds: plan.warmupSeconds,
    ...(hasTaskset ? { cpus: LOAD_CPU } : {}),
  });
  return result.failed > 0 ? undefined : result.reqPerSec;
}

export const grants: Bench = async (ctx) => {
  const plan = PLANS[ctx.mode];
  if (!Number.isInteger(plan.grants) || plan.grants < plan.held)
    throw new Error(`BENCH_GRANTS_USERS must be an integer of at least ${plan.held}`);
  const started = Date.now();
  const encryptionKey = benchEncryptionKey();
  // tmpfs when there is one: the file's bytes do not depend on the medium, its fsync per write does.
  const sqliteDir = existsSync("/dev/shm") ? "/dev/shm" : undefined;
  const sqlite = await measureSqliteGrants({
    encryptionKey,
    grants: plan.grants,
    apps: plan.apps,
    log: ctx.log,
    ...(sqliteDir ? { dir: sqliteDir } : {}),
  });
  const redis = await startRedisServer();
  const children: GrantsChild[] = [];
  try {
    const place = { url: redis.url, prefix: PREFIX, encryptionKey };
    const redisBytes = await measureRedisGrants({
      ...place,
      grants: plan.grants,
      apps: plan.apps,
      log: ctx.log,
    });

    ctx.log("grants: starting the broker and load children");
    const pin = (cpus: string) => (hasTaskset ? { cpus } : {});
    const broker = await GrantsChild.start(
      new URL("./grants-broker-child.ts", import.meta.url),
      {
        GRANTS_REDIS_URL: redis.url,
        GRANTS_PREFIX: PREFIX,
        GRANTS_KEY_ID: encryptionKey.id,
        GRANTS_KEY: encryptionKey.key,
        GRANTS_MAX_USERS: String(plan.held),
      },
      // GRANTS_CHILD_EXEC_ARGV adds flags to the broker child, e.g. "--cpu-prof" to profile it.
      { ...pin(BROKER_CPU), execArgv: ["--expose-gc", ...childFlags()] },
    );
    children.push(broker);
    const load = await GrantsChild.start(
      new URL("./grants-load-child.ts", import.meta.url),
      { GRANTS_PORT: String(broker.port) },
      pin(LOAD_CPU),
    );
    children.push(load);

    // The app token fetched (from the emulator) before the first sample.
    await load.run({ type: "load", target: "app", from: 0, to: 1, seconds: 0.2, warmupSeconds: 0 });
    const empty = await broker.memory();
    const fill = await load.run({ type: "fill", from: 0, to: plan.held });
    if (fill.failed > 0 || (fill.mismatched ?? 0) > 0)
      throw new Error(
        `filling L1: ${fill.failed} failed, ${fill.mismatched} values not the grant's`,
      );
    const full = await broker.memory();
    ctx.log(
      `grants: ${full.held} users held after ${fill.calls} GetToken in ${fill.seconds.toFixed(1)} s; ` +
        `heap ${(empty.heapUsed / 1e6).toFixed(1)} → ${(full.heapUsed / 1e6).toFixed(1)} MB`,
    );

    const loadFigures = await compareLoad(ctx, load, plan);
    const h2load = await h2loadCheck(broker.port, plan);

    // Another replica's users: the broker hears each write and re-reads it.
    const heardFrom = plan.grants;
    await writeUserGrants({
      ...place,
      from: heardFrom,
      to: heardFrom + plan.heardMore,
      log: ctx.log,
    });
    await broker.ask({ type: "heard", count: plan.heardMore });
    const heard = await broker.memory();

    const figures: BrokerFigures = { empty, full, heard, fill, load: loadFigures, h2load };
    return grantsSection({
      plan,
      redis: redisBytes,
      sqlite,
      broker: figures,
      pinned: hasTaskset,
      seconds: (Date.now() - started) / 1000,
    });
  } finally {
    for (const c of children.reverse()) await c.close();
    await redis.stop();
  }
};

export default grants;
