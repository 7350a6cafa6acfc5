/**
 * Scale: many apps on 3 replicas sharing Redis, emulator and fake clock.
 * After the first fetch of every app, one rotation: are the proactive
 * refreshes on time, how are they spread over the replicas, and what does
 * an idle simulated minute cost in CPU with that many apps versus one.
 */
import { setMaxListeners } from "node:events";
import type { Bench, BenchRow, BenchSection } from "./contract.js";
import {
  type BenchApp,
  type BenchHarness,
  benchApps,
  startBenchReplicas,
} from "./economy-harness.js";
import { startRedisServer } from "./lib/redis-server.js";

const REPLICAS = 3;
const LIFETIME_S = 1800;
const POLL_MS = 1000;
/** The due queue varies each poll by ±10%; "on time" allows one poll plus that. */
const ON_TIME_MS = POLL_MS * 1.1;
const FIRST_FETCH_CONCURRENCY = 200;
/** Fake-time step during the rotation: a quarter poll, so poll timers fire near their time. */
const ROTATION_STEP_MS = POLL_MS / 4;

const never = new AbortController().signal;
setMaxListeners(0, never);

function manager(h: BenchHarness, i: number) {
  const replica = h.replicas[i % h.replicas.length];
  if (!replica) throw new Error(`no replica ${i}`);
  return replica.manager;
}

/** Fetches every app's access token once, app k on replica k % REPLICAS. */
async function firstFetch(h: BenchHarness, apps: readonly BenchApp[]): Promise<void> {
  for (let k = 0; k < apps.length; k += FIRST_FETCH_CONCURRENCY) {
    await Promise.all(
      apps
        .slice(k, k + FIRST_FETCH_CONCURRENCY)
        .map((a, j) => manager(h, k + j).get(a.id, "access_token", never)),
    );
  }
  await h.quiet();
}

/** CPU (user + system, this process) per simulated minute, stepping one poll at a time. */
async function idleCpuMsPerMinute(h: BenchHarness, minutes: number): Promise<number> {
  const before = process.cpuUsage();
  for (let s = 0; s < (minutes * 60_000) / POLL_MS; s++) {
    await h.clock.advance(POLL_MS);
    await h.quiet();
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / minutes;
}

interface ScaleResult {
  apps: number;
  firstFetchS: number;
  idleCpuMsPerMin: number;
  refreshes: number;
  onTime: number;
  lateMaxMs: number;
  perReplica: number[];
  rotationRealS: number;
}

async function run(
  redisUrl: string,
  count: number,
  idleMinutes: number,
  log: (l: string) => void,
): Promise<ScaleResult> {
  const apps = benchApps(count);
  const h = await startBenchReplicas(REPLICAS, redisUrl, apps, {
    tokenLifetimeSeconds: LIFETIME_S,
    schedulePollMs: POLL_MS,
  });
  try {
    let t = performance.now();
    await firstFetch(h, apps);
    const firstFetchS = (performance.now() - t) / 1000;
    log(`scale ${count}: first fetch ${firstFetchS.toFixed(1)} s real`);
    const written0 = h.replicas.map((r) => r.manager.refreshesWritten);
    const due = apps.map((a) => {
      const at = h.replicas
        .map((r) => r.manager.nextRefreshAt(a.id, "access_token"))
        .filter((x): x is number => x !== undefined);
      return at.length > 0 ? Math.min(...at) : Number.NaN;
    });
    const unknownDue = due.filter((d) => Number.isNaN(d)).length;
    if (unknownDue > 0) log(`scale ${count}: ${unknownDue} apps have no planned refresh`);

    const idleCpuMsPerMin = await idleCpuMsPerMinute(h, idleMinutes);
    log(`scale ${count}: idle ${idleCpuMsPerMin.toFixed(1)} ms CPU per simulated minute`);

    // One rotation: jump to just before the first refresh, then step one poll at a time
    // until every app has a second version (or the tokens would have expired).
    t = performance.now();
    const known = due.filter((d) => !Number.isNaN(d));
    const firstDue = Math.min(...known);
    const lastDue = Math.max(...known);
    const jump = firstDue - 2 * POLL_MS - h.clock.now();
    if (jump > 0) {
      await h.clock.advance(jump);
      await h.quiet();
    }
    const end = lastDue + 60_000;
    const fetchedAt: (number | undefined)[] = new Array(count).fill(undefined);
    let pending = count;
    while (pending > 0 && h.clock.now() < end) {
      await h.clock.advance(ROTATION_STEP_MS);
      await h.quiet();
      for (const [k, a] of apps.entries()) {
        if (fetchedAt[k] !== undefined) continue;
        const c = h.replicas[0]?.manager.peek(a.id, "access_token");
        if (c && c.version >= 2) {
          fetchedAt[k] = c.fetchedAt;
          pending--;
        }
      }
    }
    const rotationRealS = (performance.now() - t) / 1000;
    let onTime = 0;
    let lateMaxMs = 0;
    for (let k = 0; k < count; k++) {
      const f = fetchedAt[k];
      const d = due[k];
      if (f === undefined || d === undefined || Number.isNaN(d)) continue;
      const late = f - d;
      lateMaxMs = Math.max(lateMaxMs, late);
      if (late <= ON_TIME_MS) onTime++;
    }
    const perReplica = h.replicas.map((r, i) => r.manager.refreshesWritten - (written0[i] ?? 0));
    log(
      `scale ${count}: rotation ${rotationRealS.toFixed(1)} s real, ${count - pending} refreshed, ` +
        `${onTime} on time, latest ${(lateMaxMs / 1000).toFixed(1)} s after due, ` +
        `per replica ${perReplica.join("/")}, due window ${((lastDue - firstDue) / 1000).toFixed(0)} s`,
    );
    return {
      apps: count,
      firstFetchS,
      idleCpuMsPerMin,
      refreshes: count - pending,
      onTime,
      lateMaxMs,
      perReplica,
      rotationRealS,
    };
  } finally {
    await h.close();
  }
}

export const scale: Bench = async (ctx): Promise<BenchSection> => {
  const count = ctx.mode === "full" ? 10_000 : 150;
  const idleMinutes = ctx.mode === "full" ? 5 : 1;
  const redis = await startRedisServer();
  let many: ScaleResult;
  let one: ScaleResult;
  try {
    await run(redis.url, 1, idleMinutes, ctx.log); // warm-up (JIT), discarded
    one = await run(redis.url, 1, idleMinutes, ctx.log);
    many = await run(redis.url, count, idleMinutes, ctx.log);
  } finally {
    await redis.stop();
  }
  const minMax = Math.min(...many.perReplica) / Math.max(1, Math.max(...many.perReplica));
  const rows: BenchRow[] = [
    {
      metric: `refreshes of ${count} apps done within one schedule poll (${POLL_MS} ms) of their due time`,
      value: Math.round((many.onTime / count) * 1000) / 10,
      unit: "%",
    },
    {
      metric: `refreshes per replica, min/max over ${REPLICAS} replicas (${many.perReplica.join("/")})`,
      value: Math.round(minMax * 100) / 100,
      unit: "ratio",
    },
    {
      metric: `CPU per simulated minute with nothing due, ${count} apps`,
      value: Math.round(many.idleCpuMsPerMin * 10) / 10,
      baseline: Math.round(one.idleCpuMsPerMin * 10) / 10,
      baselineName: "the same broker and harness with 1 app",
      unit: "ms CPU/min",
    },
  ];
  return {
    title: `Scale: ${count} apps on ${REPLICAS} replicas`,
    rows,
    notes: [
      `${REPLICAS} TokenManagers in one process, each with its own Redis connections (shared ` +
        `prefix and due queue, schedule poll ${POLL_MS} ms), and the emulator, on one fake ` +
        `clock; classic tokens of ${LIFETIME_S} s. App k's first fetch goes to replica k % ${REPLICAS}, ` +
        `${FIRST_FETCH_CONCURRENCY} at a time (${many.firstFetchS.toFixed(1)} s real for ${count}).`,
      "Rotation: the clock jumps to 2 polls before the first planned refresh, then moves a " +
        "quarter poll at a time, waiting for quiet after each, until every app has version 2. Due time = the " +
        "earliest `nextRefreshAt` any replica reports right after the first fetch; on time = the " +
        `new token's fetchedAt ≤ due + ${ON_TIME_MS} ms (one poll plus its ±10% jitter). ` +
        `${many.refreshes}/${count} refreshed, latest ${(many.lateMaxMs / 1000).toFixed(1)} s after due ` +
        `(${many.rotationRealS.toFixed(1)} s real).`,
      `Idle CPU (after a discarded 1-app warm-up run): process.cpuUsage over ${idleMinutes} simulated minute(s) right after the first ` +
        "fetch (nothing due for ~20 min), stepping one poll at a time with a wait for quiet; it " +
        "counts this whole process (replicas, emulator, harness) but not redis-server. Real time " +
        "between fake steps is a few ms, so real-time timers barely count.",
    ],
  };
};
