/** The grants benchmark's table and notes, from what bench/grants.ts measured. */
import type { BenchRow, BenchSection } from "./contract.js";
import type { GrantsPlan } from "./grants.js";
import type { LoadResult, MemorySample } from "./grants-protocol.js";
import type { RedisGrantsResult } from "./grants-redis.js";
import type { SqliteGrantsResult } from "./grants-sqlite.js";

const MILLION = 1_000_000;

export interface LoadFigures {
  readonly user: LoadResult;
  readonly app: LoadResult;
}

export interface BrokerFigures {
  /** The broker with the app token and the load connections, no user held. */
  readonly empty: MemorySample;
  /** After one GetToken for each of `plan.held` users. */
  readonly full: MemorySample;
  /** After hearing `plan.heardMore` other users' writes. */
  readonly heard: MemorySample;
  readonly fill: LoadResult;
  readonly load: LoadFigures;
  /** h2load's req/s on the app-token path, when h2load is there. */
  readonly h2load: number | undefined;
}

const n = (x: number) => x.toLocaleString("en-US");
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const round = (x: number) => Math.round(x);
const ms = (x: number) => Math.round(x * 100) / 100;

function storeRows(plan: GrantsPlan, r: RedisGrantsResult, s: SqliteGrantsResult): BenchRow[] {
  const measured = plan.grants >= MILLION;
  const label = measured ? "" : `, extrapolated from ${n(plan.grants)}`;
  const appBaseline =
    "an app's access-token record in the same store (account-level key, sealed value, no state)";
  return [
    {
      metric: `Redis: used_memory per grant (${n(plan.grants)} grants written)`,
      value: round(r.grants.usedMemoryPerRecord),
      baseline: round(r.apps.usedMemoryPerRecord),
      baselineName: appBaseline,
      unit: "B",
    },
    {
      metric: "Redis: MEMORY USAGE per grant key (mean of sampled keys)",
      value: round(r.grants.memoryUsagePerKey),
      baseline: round(r.apps.memoryUsagePerKey),
      baselineName: appBaseline,
      unit: "B",
    },
    {
      metric: `Redis: used_memory for 1,000,000 users' grants${label}`,
      value: mb(r.grants.usedMemoryPerRecord * MILLION),
      baseline: mb(r.apps.usedMemoryPerRecord * MILLION),
      baselineName: appBaseline,
      unit: "MB",
    },
    {
      metric: `SQLite: file bytes per grant (${n(plan.grants)} grants, after checkpoint)`,
      value: round(s.grants.bytesPerRecord),
      baseline: round(s.apps.bytesPerRecord),
      baselineName: appBaseline,
      unit: "B",
    },
    {
      metric: `SQLite: file size for 1,000,000 users' grants${label}`,
      value: mb(s.grants.bytesPerRecord * MILLION),
      baseline: mb(s.apps.bytesPerRecord * MILLION),
      baselineName: appBaseline,
      unit: "MB",
    },
  ];
}

function brokerRows(plan: GrantsPlan, b: BrokerFigures, r: RedisGrantsResult): BenchRow[] {
  const noUsers =
    "the same broker holding no user (app token fetched; no client connected in either sample)";
  const perUser = (b.full.heapUsed - b.empty.heapUsed) / b.full.held;
  const { user, app } = b.load;
  const appPath = "GetToken for the app's access token (the hot path), same client and broker";
  return [
    {
      metric: `Broker heapUsed after GC, ${n(b.full.held)} users' tokens in L1`,
      value: mb(b.full.heapUsed),
      baseline: mb(b.empty.heapUsed),
      baselineName: noUsers,
      unit: "MB",
    },
    {
      metric: `Broker RSS after GC, ${n(b.full.held)} users' tokens in L1`,
      value: mb(b.full.rss),
      baseline: mb(b.empty.rss),
      baselineName: noUsers,
      unit: "MB",
    },
    {
      metric: "Broker heapUsed per user held in L1",
      value: round(perUser),
      baseline: round(r.grants.usedMemoryPerRecord),
      baselineName: "the same grant in Redis (used_memory per grant)",
      unit: "B",
    },
    {
      metric: `Broker heapUsed after hearing ${n(plan.heardMore)} more users' writes (L1 holds ${n(b.heard.held)})`,
      value: mb(b.heard.heapUsed),
      baseline: mb(b.full.heapUsed),
      baselineName: `the same broker before (${n(b.full.held)} users in L1)`,
      unit: "MB",
    },
    {
      metric: `GetToken for users, warm L1 (${n(plan.warmUsers)} users round-robin), req/s at 128 in flight`,
      value: round(user.reqPerSec),
      baseline: round(app.reqPerSec),
      baselineName: appPath,
      unit: "req/s",
    },
    {
      metric: "GetToken for users, warm L1, p50 latency",
      value: ms(user.p50Ms),
      baseline: ms(app.p50Ms),
      baselineName: appPath,
      unit: "ms",
    },
    {
      metric: "GetToken for users, warm L1, p99 latency",
      value: ms(user.p99Ms),
      baseline: ms(app.p99Ms),
      baselineName: appPath,
      unit: "ms",
    },
  ];
}

function notes(o: {
  plan: GrantsPlan;
  redis: RedisGrantsResult;
  sqlite: SqliteGrantsResult;
  broker: BrokerFigures;
  pinned: boolean;
  seconds: number;
}): string[] {
  const { plan, redis, sqlite, broker } = o;
  const g = redis.grants;
  const perGrantUs = (cpuSeconds: number) => Math.round((cpuSeconds / g.records) * 1e6);
  const heardDelta = (broker.heard.heapUsed - broker.full.heapUsed) / plan.heardMore;
  const out = [
    "Records as WeChat issues them: a grant is a 100-character user access token, the sealed state " +
      "(JSON: a 100-character refresh token, scope snsapi_userinfo, a 28-character unionid) and renewableUntil " +
      "30 days on, under a 28-character openid; the baseline is a 157-character app access token. Both are " +
      "sealed with AES-256-GCM (security.encryptionKeys), as production should run, and written as a first " +
      "write (compareAndSet at version 0), as a code exchange stores a grant.",
    `Redis (redis-server ${redis.version}, started by the bench, no persistence): ${n(g.records)} grants through RedisTokenStore ` +
      `(its client auto-pipelined, 256 writes in flight, a fresh store per 100,000) in ${g.writeSeconds.toFixed(1)} s ` +
      `(${n(round(g.records / g.writeSeconds))} grants/s; writer CPU ${perGrantUs(g.writerCpuSeconds)} µs and ` +
      `redis-server CPU ${perGrantUs(g.redisCpuSeconds)} µs per grant). used_memory is read once it stops moving, ` +
      `before and after; MEMORY USAGE (SAMPLES 0) over 1,000 evenly spaced keys. Each credential is one hash, ` +
      `encoded '${g.encoding}' (grant) and '${redis.apps.encoding}' (app): the sealed fields are longer than ` +
      "hash-max-listpack-value (64 B), so Redis keeps a dict per key rather than a listpack. The baseline is " +
      `${n(redis.apps.records)} app records (account-level keys app0…) written the same way first.`,
    `SQLite: the same records through openSqliteStores (WAL, synchronous=FULL, one transaction per write), ` +
      `${n(sqlite.grants.records)} grants in ${sqlite.grants.writeSeconds.toFixed(1)} s into a file in ` +
      `${sqlite.dir === "/dev/shm" ? "/dev/shm (tmpfs: the bytes do not depend on the medium; the fsync per write, which bounds the write rate on a disk, is not measured)" : sqlite.dir}; ` +
      "size after close (which checkpoints and removes the WAL) minus an empty store's file; the table's " +
      "two indexes (kind, keep_until) are counted. Baseline: a file of app records written the same way.",
    `Broker: the production startBroker (buildCore) in a child process (node --expose-gc${o.pinned ? ", pinned to core 0" : ""}) ` +
      `on the same Redis and key, cache.maxUserTokens ${n(plan.held)}, in front of the emulator. Memory: heapUsed and ` +
      `RSS after 4 forced GCs, before and after one GetToken over gRPC for each of ${n(plan.held)} users ` +
      `(${fill(broker.fill)}); the L1 then held ${n(broker.full.held)}. Per user: the LRU entry, the decrypted ` +
      "credential and the GetTokenResponse cached for it (TokenResponses, held while L1 holds the credential).",
    `Hearing other replicas' users: ${n(plan.heardMore)} grants of new users written by another RedisTokenStore while ` +
      `the broker listens; it re-reads each and adopts it into L1 (then ${n(broker.heard.held)} entries, LRU); ` +
      `heapUsed moved by ${n(round(heardDelta))} B per user heard.` +
      (heardDelta > 100
        ? " What grows: RedisTokenStore's HintRereader keeps the last record it delivered for every credential " +
          "it has heard of, without bound, so a replica's heap grows with every user written anywhere since it " +
          "started, beyond cache.maxUserTokens."
        : ""),
    `Load: a bare h2c gRPC client (lib/h2-raw-client.ts: frames written by hand, the request body varied per call) ` +
      `in a child process${o.pinned ? " pinned to core 1" : ""}, 4 connections × 32 streams, ${plan.rounds} alternating ` +
      `round(s) of ${plan.seconds} s after ${plan.warmupSeconds} s warm-up per target, the median round by req/s shown. ` +
      "h2load sends one fixed body, so it cannot vary the subject, and node's own http2 client is too slow to load " +
      "the broker from one core; both targets go through this one client, so their ratio compares the broker's paths. " +
      "A call counts when its response message arrived (the broker's errors are trailers-only); any failed call fails the run." +
      (broker.h2load === undefined
        ? ""
        : ` h2load on the same app-token path, same run: ${n(round(broker.h2load))} req/s (this client: ${n(round(broker.load.app.reqPerSec))} req/s).`),
    usersNote(plan, broker.load),
    `Whole section: ${o.seconds.toFixed(0)} s.`,
  ];
  if (plan.grants < MILLION)
    out.push(
      `Extrapolated rows: ${n(plan.grants)} grants were written, not 1,000,000, since each costs the writer ` +
        `${perGrantUs(g.writerCpuSeconds)} µs of CPU through the store (minutes for a million on 2 cores); bytes per ` +
        "grant are flat in the count (within a few bytes at 20,000, 50,000 and 200,000 when this benchmark was " +
        "written). BENCH_GRANTS_USERS=1000000 writes all of them.",
    );
  return out;
}

/** What differs between the two paths besides the L1 lookup: how often a response is built. */
function usersNote(plan: GrantsPlan, load: LoadFigures): string {
  const perUser = load.user.reqPerSec / plan.warmUsers;
  return (
    `Users round-robin: ${n(plan.warmUsers)} users at ${n(round(load.user.reqPerSec))} req/s is ` +
    `${perUser.toFixed(1)} calls per user per second. The broker builds and encodes a GetTokenResponse at most ` +
    "once per credential and second (TokenResponses), so about " +
    `${Math.round(Math.min(1, 1 / perUser) * 100)}% of user calls build one, against one per second for the app token; ` +
    "a user's call also goes through the L1's LRU (lru-cache) rather than a Map."
  );
}

function fill(r: LoadResult): string {
  return `${n(r.calls)} calls in ${r.seconds.toFixed(1)} s, ${r.checked ?? 0} values checked against the grant written`;
}

export function grantsSection(o: {
  plan: GrantsPlan;
  redis: RedisGrantsResult;
  sqlite: SqliteGrantsResult;
  broker: BrokerFigures;
  pinned: boolean;
  seconds: number;
}): BenchSection {
  return {
    title: `Users' grants: ${n(o.plan.grants)} users in Redis and SQLite, ${n(o.plan.held)} in L1`,
    rows: [...storeRows(o.plan, o.redis, o.sqlite), ...brokerRows(o.plan, o.broker, o.redis)],
    notes: notes(o),
  };
}
