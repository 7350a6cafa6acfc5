/**
 * Upstream economy: how many /cgi-bin/token fetches one app costs in a
 * simulated day, through the broker (3 replicas sharing Redis) versus the
 * same workload through co-wechat-api sharing its token in Redis as its
 * README advises (3 API instances, one per "replica"). Both run against the
 * project's emulator on a fake clock.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import API from "co-wechat-api";
import { Redis } from "ioredis";
import type { Emulator } from "../src/emulator/index.js";
import type { FakeClock } from "../src/shared/fake-clock.js";
import type { Bench, BenchRow, BenchSection } from "./contract.js";
import { benchApps, seededRandom, startBenchReplicas, startEmulator } from "./economy-harness.js";
import { startRedisServer } from "./lib/redis-server.js";

const REPLICAS = 3;
const LIFETIME_S = 1800;
/** Every client calls GetToken once per this many simulated seconds. */
const PERIOD_S = 300;
/** The broker's schedule poll, and how often (simulated) the run waits for quiet. */
const POLL_MS = 30_000;
const INVALIDATE_SHARE = 0.01;
const SEED = 20_260_101;
/** Measure demand, not the 2000-a-day cap (reported against it instead). */
const EMULATOR_OPTIONS = { dailyLimits: { "/cgi-bin/token": null } } as const;
const DAILY_QUOTA = 2000;

const never = new AbortController().signal;
setMaxListeners(0, never);

interface Workload {
  clients: number;
  seconds: number;
}

/** What a client does through one side: GetToken and InvalidateToken, on replica `r`. */
interface TokenSide {
  get(r: number): Promise<string>;
  invalidate(r: number, value: string): Promise<void>;
}

interface DayResult {
  fetches: number;
  gets: number;
  invalidates: number;
  /** Tokens handed to clients that the emulator rejects, by errcode. */
  invalid: Record<string, number>;
  invalidTotal: number;
  /** Calls that threw. */
  failures: number;
  realMs: number;
}

/**
 * The workload: client i calls at second (i * PERIOD_S / clients) of every
 * PERIOD_S window, on replica i % REPLICAS; clients due in the same simulated
 * second call concurrently. Before its GetToken, a client reports the value
 * it holds (from its previous call) invalid with probability INVALIDATE_SHARE,
 * drawn from a seeded generator so both sides see the same decisions.
 */
async function runDay(
  w: Workload,
  clock: FakeClock,
  emulator: Emulator,
  appid: string,
  side: TokenSide,
  settle: () => Promise<void>,
): Promise<DayResult> {
  const groups: number[][] = Array.from({ length: PERIOD_S }, () => []);
  for (let i = 0; i < w.clients; i++) groups[Math.floor((i * PERIOD_S) / w.clients)]?.push(i);
  const held: (string | undefined)[] = new Array(w.clients).fill(undefined);
  const random = seededRandom(SEED);
  const r: DayResult = {
    fetches: 0,
    gets: 0,
    invalidates: 0,
    invalid: {},
    invalidTotal: 0,
    failures: 0,
    realMs: 0,
  };
  const before = emulator.control.callCount("/cgi-bin/token", appid);
  const started = performance.now();
  const call = async (i: number, invalidate: boolean): Promise<void> => {
    const replica = i % REPLICAS;
    try {
      const value = held[i];
      if (invalidate && value !== undefined) {
        r.invalidates++;
        await side.invalidate(replica, value);
      }
      const token = await side.get(replica);
      r.gets++;
      const check = emulator.control.checkToken(token);
      if (!check.valid) {
        const code = String(check.errcode);
        r.invalid[code] = (r.invalid[code] ?? 0) + 1;
        r.invalidTotal++;
      }
      held[i] = token;
    } catch {
      r.failures++;
    }
  };
  for (let s = 0; s < w.seconds; s++) {
    if (s > 0) await clock.advance(1000);
    const group = groups[s % PERIOD_S] ?? [];
    await Promise.all(group.map((i) => call(i, random() < INVALIDATE_SHARE)));
    if ((s + 1) % (POLL_MS / 1000) === 0) await settle();
  }
  await settle();
  r.realMs = performance.now() - started;
  r.fetches = emulator.control.callCount("/cgi-bin/token", appid) - before;
  return r;
}

async function brokerDay(w: Workload, redisUrl: string): Promise<DayResult> {
  const [app] = benchApps(1);
  if (!app) throw new Error("no app");
  const h = await startBenchReplicas(REPLICAS, redisUrl, [app], {
    tokenLifetimeSeconds: LIFETIME_S,
    schedulePollMs: POLL_MS,
    emulator: EMULATOR_OPTIONS,
  });
  const manager = (i: number) => {
    const replica = h.replicas[i];
    if (!replica) throw new Error(`no replica ${i}`);
    return replica.manager;
  };
  try {
    return await runDay(
      w,
      h.clock,
      h.emulator,
      app.appid,
      {
        get: async (i) => (await manager(i).get(app.id, "access_token", never)).value,
        invalidate: async (i, value) => {
          await manager(i).invalidate(app.id, "access_token", value, 40001, never);
        },
      },
      () => h.quiet(),
    );
  } finally {
    await h.close();
  }
}

/**
 * co-wechat-api reads Date.now() for expiry; during its day Date.now is the
 * fake clock (restored afterwards), and nothing else runs in the process then.
 */
async function coWechatApiDay(w: Workload, redisUrl: string): Promise<DayResult> {
  const [app] = benchApps(1);
  if (!app) throw new Error("no app");
  const { clock, emulator, url } = await startEmulator([app], {
    ...EMULATOR_OPTIONS,
    tokenLifetimeSeconds: LIFETIME_S,
  });
  const key = `cwa-${randomUUID().slice(0, 8)}:access_token`;
  const connections = Array.from({ length: REPLICAS }, () => new Redis(redisUrl));
  const apis = connections.map((redis) => {
    const api = new API(
      app.appid,
      app.secret,
      async () => {
        const text = await redis.get(key);
        return text === null ? null : (JSON.parse(text) as API.StoredToken);
      },
      async (token) => {
        if (token === null) await redis.del(key);
        else await redis.set(key, JSON.stringify(token));
      },
    );
    api.prefix = `${url}/cgi-bin/`;
    return api;
  });
  const api = (i: number) => {
    const a = apis[i];
    if (!a) throw new Error(`no api ${i}`);
    return a;
  };
  const realNow = Date.now;
  Date.now = () => clock.now();
  try {
    return await runDay(
      w,
      clock,
      emulator,
      app.appid,
      {
        get: async (i) => (await api(i).ensureAccessToken()).accessToken,
        // What co-wechat-api itself does when WeChat answers 40001 (api_common.js request()):
        // drop the shared token, fetch a new one.
        invalidate: async (i) => {
          await api(i).saveToken(null);
          await api(i).getAccessToken();
        },
      },
      async () => {},
    );
  } finally {
    Date.now = realNow;
    for (const c of connections) c.disconnect();
    await emulator.close();
  }
}

function describe(d: DayResult): string {
  return (
    `${d.fetches} fetches, ${d.gets} GetToken, ${d.invalidates} InvalidateToken, ` +
    `${d.invalidTotal} invalid tokens served ${JSON.stringify(d.invalid)}, ${d.failures} failures, ` +
    `${(d.realMs / 1000).toFixed(1)} s real`
  );
}

export const economy: Bench = async (ctx): Promise<BenchSection> => {
  const w: Workload =
    ctx.mode === "full" ? { clients: 1000, seconds: 86_400 } : { clients: 60, seconds: 7200 };
  const days = w.seconds / 86_400;
  const redis = await startRedisServer();
  let broker: DayResult;
  let baseline: DayResult;
  try {
    ctx.log(`economy: broker, ${w.clients} clients, ${w.seconds / 3600} simulated hours`);
    broker = await brokerDay(w, redis.url);
    ctx.log(`economy: broker: ${describe(broker)}`);
    ctx.log("economy: co-wechat-api with a shared Redis token");
    baseline = await coWechatApiDay(w, redis.url);
    ctx.log(`economy: co-wechat-api: ${describe(baseline)}`);
  } finally {
    await redis.stop();
  }
  const baselineName = "co-wechat-api 3.11.0, 3 instances sharing the token in Redis";
  const perDay = (n: number) => Math.round((n / days) * 10) / 10;
  const rows: BenchRow[] = [
    {
      metric: `/cgi-bin/token fetches per app per simulated day (${REPLICAS} replicas, ${w.clients} clients)`,
      value: perDay(broker.fetches),
      baseline: perDay(baseline.fetches),
      baselineName,
      unit: "fetches/day",
    },
    {
      metric: "invalid tokens (40001/42001) handed to clients per simulated day",
      value: perDay(broker.invalidTotal),
      baseline: perDay(baseline.invalidTotal),
      baselineName,
      unit: "tokens/day",
    },
    {
      metric: "share of the 2000-a-day /cgi-bin/token quota used",
      value: Math.round((perDay(broker.fetches) / DAILY_QUOTA) * 1000) / 10,
      baseline: Math.round((perDay(baseline.fetches) / DAILY_QUOTA) * 1000) / 10,
      baselineName,
      unit: "%",
    },
  ];
  return {
    title: "Upstream economy: token fetches in a simulated day",
    rows,
    notes: [
      `Workload: ${w.clients} clients, each calling GetToken every ${PERIOD_S} simulated seconds ` +
        `(phases spread evenly; clients due in the same simulated second call concurrently), ` +
        `spread over ${REPLICAS} replicas by client index; before ${INVALIDATE_SHARE * 100}% of ` +
        "calls (seeded, identical on both sides) the client first reports the value it holds " +
        "from its previous call as rejected (InvalidateToken, errcode 40001). No real 40001 " +
        "drives these reports: they model false alarms and stale reports.",
      `Emulator token lifetime ${LIFETIME_S} s, 300 s grace for one superseded token, daily ` +
        "quota lifted so demand is measured (the quota row compares it with the real 2000).",
      `Broker: ${REPLICAS} TokenManagers in-process (GetToken/InvalidateToken called on the ` +
        `manager, not over gRPC), each with its own Redis connections, schedule poll ${POLL_MS / 1000} s; ` +
        "fake clock shared with the emulator, advanced 1 s at a time, waiting for quiet every poll.",
      "co-wechat-api: new API(appid, secret, getToken, saveToken) ×3, getToken/saveToken a JSON " +
        "value in one Redis key; its token URL is pointed at the emulator by setting `api.prefix`. " +
        "GetToken = ensureAccessToken(); InvalidateToken = what its request() does on 40001 " +
        "(saveToken(null), then getAccessToken()). It reads Date.now() for expiry, so Date.now is " +
        "replaced by the same fake clock for its run (restored after).",
      "Invalid tokens: every value handed to a client is checked with the emulator at once " +
        `(checkToken). Broker: ${describe(broker)}. co-wechat-api: ${describe(baseline)}.`,
    ],
  };
};
