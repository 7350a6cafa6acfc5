/**
 * WatchToken fan-out: how fast a refresh reaches 10,000 open streams, what an
 * idle stream costs in memory, and how much a second replica (sharing Redis)
 * adds to the delivery time.
 *
 * Every broker runs in a child process (bench/fanout-child.ts) so the client
 * streams, opened here over a few HTTP/2 connections, do not share its event
 * loop. Times are taken on the machine's monotonic clock in both processes.
 */

import { type ChildProcess, fork } from "node:child_process";
import type http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  GetTokenRequestSchema,
  GetTokenResponseSchema,
  InvalidateTokenRequestSchema,
  InvalidateTokenResponseSchema,
  TokenKind,
  WatchTokenRequestSchema,
  WatchTokenResponseSchema,
} from "../gen/tokenbroker/v1/token_service_pb.js";
import type { Bench, BenchContext, BenchRow, BenchSection } from "./contract.js";
import { connectH2, startCall, unaryCall } from "./fanout-h2.js";
import {
  type ChildMessage,
  type ChildMode,
  FANOUT_APP,
  GET_PATH,
  INVALIDATE_PATH,
  type MemorySample,
  nowMs,
  type ParentMessage,
  WATCH_PATH,
} from "./fanout-protocol.js";
import { childEntry } from "./lib/build.js";
import { startRedisServer } from "./lib/redis-server.js";

const CHILD_SOURCE = new URL("./fanout-child.ts", import.meta.url);
const GOAL_P99_MS = 100;
const GOAL_ACROSS_EXTRA_MS = 50;
const GOAL_BYTES_PER_STREAM = 5 * 1024;
const DELIVERY_TIMEOUT_MS = 30_000;

interface Plan {
  streams: number;
  connections: number;
  rounds: number;
}

const PLANS: Record<BenchContext["mode"], Plan> = {
  smoke: { streams: 200, connections: 2, rounds: 1 },
  full: { streams: 10_000, connections: 10, rounds: 3 },
};

// --- child processes ---------------------------------------------------------

/** Every child started, killed if this process exits without closing it. */
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

class Child {
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<number, (m: ChildMessage) => void>();
  readonly #commits: Array<{ version: number; at: number }> = [];
  readonly #commitWaiters = new Set<() => void>();
  #nextId = 1;

  private constructor(
    proc: ChildProcess,
    readonly grpcPort: number,
  ) {
    this.#proc = proc;
    proc.on("message", (m: ChildMessage) => {
      if (m.type === "commit") {
        this.#commits.push({ version: m.version, at: m.at });
        for (const w of this.#commitWaiters) w();
      } else if (m.type === "memory" || m.type === "pushed") {
        this.#waiting.get(m.id)?.(m);
        this.#waiting.delete(m.id);
      }
    });
  }

  static async start(mode: ChildMode, redis?: { url: string; prefix: string }): Promise<Child> {
    const env: NodeJS.ProcessEnv = { ...process.env, FANOUT_MODE: mode };
    if (redis) {
      env.FANOUT_REDIS_URL = redis.url;
      env.FANOUT_REDIS_PREFIX = redis.prefix;
    }
    // FANOUT_CHILD_EXEC_ARGV adds flags to the children, e.g. "--cpu-prof" to profile them.
    const extra = (process.env.FANOUT_CHILD_EXEC_ARGV ?? "").split(" ").filter((a) => a !== "");
    const entry = childEntry(CHILD_SOURCE);
    const proc = fork(entry.file, [], {
      execArgv: ["--expose-gc", ...entry.execArgv, ...extra],
      env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.add(proc);
    proc.once("exit", () => children.delete(proc));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("fan-out child not ready in 30 s")), 30_000);
      proc.on("message", (m: ChildMessage) => {
        if (m.type !== "ready") return;
        clearTimeout(timer);
        resolve(m.grpcPort);
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`fan-out child exited with ${code} before it was ready`));
      });
    });
    return new Child(proc, port);
  }

  #ask(message: ParentMessage & { id: number }): Promise<ChildMessage> {
    return new Promise((resolve) => {
      this.#waiting.set(message.id, resolve);
      this.#proc.send(message);
    });
  }

  async memory(): Promise<MemorySample> {
    const reply = await this.#ask({ type: "memory", id: this.#nextId++ });
    if (reply.type !== "memory") throw new Error("unexpected reply");
    return reply.sample;
  }

  async push(version: number): Promise<number> {
    const reply = await this.#ask({ type: "push", id: this.#nextId++, version });
    if (reply.type !== "pushed") throw new Error("unexpected reply");
    return reply.at;
  }

  /** When the child's in-process watcher saw a version above `version`. */
  commitAfter(version: number, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.#commits.find((c) => c.version > version);
        if (!hit) return false;
        clearTimeout(timer);
        this.#commitWaiters.delete(check);
        resolve(hit.at);
        return true;
      };
      const timer = setTimeout(() => {
        this.#commitWaiters.delete(check);
        reject(new Error(`no commit above version ${version} in ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.#commitWaiters.add(check);
    });
  }

  async close(): Promise<void> {
    const proc = this.#proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    if (proc.connected) proc.send({ type: "close" } satisfies ParentMessage);
    else proc.kill("SIGTERM");
    await exited;
    clearTimeout(timer);
  }
}

// --- the streams -------------------------------------------------------------

/** N WatchToken streams over a few connections, with the arrival time of each new version. */
class Streams {
  readonly #versions: Float64Array;
  readonly #streams: http2.ClientHttp2Stream[] = [];
  #firsts = 0;
  #onFirst: (() => void) | undefined;
  #target = Number.POSITIVE_INFINITY;
  #arrivals: Float64Array;
  #arrived = 0;
  #onArrived: (() => void) | undefined;
  /** Streams that ended (they should all stay open). */
  ended = 0;

  constructor(readonly count: number) {
    this.#versions = new Float64Array(count);
    this.#arrivals = new Float64Array(count);
  }

  /** Opens them in batches, each batch waiting for its first messages. */
  async open(sessions: http2.ClientHttp2Session[]): Promise<void> {
    const request = toBinary(
      WatchTokenRequestSchema,
      create(WatchTokenRequestSchema, { appId: FANOUT_APP.id, kind: TokenKind.ACCESS_TOKEN }),
    );
    const batch = 500;
    for (let start = 0; start < this.count; start += batch) {
      const end = Math.min(this.count, start + batch);
      const firsts = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${this.#firsts} of ${end} streams got a first message`)),
          DELIVERY_TIMEOUT_MS,
        );
        this.#onFirst = () => {
          if (this.#firsts < end) return;
          clearTimeout(timer);
          resolve();
        };
      });
      for (let i = start; i < end; i++) {
        const session = sessions[i % sessions.length];
        if (!session) throw new Error("no session");
        this.#streams.push(
          startCall(session, WATCH_PATH, request, {
            onMessage: (payload, at) => this.#message(i, payload, at),
            onEnd: () => {
              this.ended++;
            },
          }),
        );
      }
      await firsts;
    }
    this.#onFirst = undefined;
  }

  #message(i: number, payload: Buffer, at: number): void {
    const version = Number(fromBinary(WatchTokenResponseSchema, payload).token?.version ?? 0n);
    const previous = this.#versions[i] ?? 0;
    this.#versions[i] = version;
    if (previous === 0) {
      this.#firsts++;
      this.#onFirst?.();
    }
    if (version >= this.#target && previous < this.#target) {
      this.#arrivals[i] = at;
      this.#arrived++;
      if (this.#arrived === this.count) this.#onArrived?.();
    }
  }

  /** The version every stream holds (they must agree). */
  currentVersion(): number {
    const v = this.#versions[0] ?? 0;
    for (const x of this.#versions) if (x !== v) throw new Error("streams disagree on the version");
    return v;
  }

  /**
   * Arms the wait for version `target` on every stream; the returned promise
   * resolves with the arrival times (NaN where it never came).
   */
  expect(target: number): Promise<Float64Array> {
    this.#target = target;
    this.#arrivals = new Float64Array(this.count).fill(Number.NaN);
    this.#arrived = 0;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.#arrivals), DELIVERY_TIMEOUT_MS);
      this.#onArrived = () => {
        clearTimeout(timer);
        resolve(this.#arrivals);
      };
    });
  }
}

// --- measurement -------------------------------------------------------------

interface Latencies {
  min: number;
  p50: number;
  p99: number;
  max: number;
  delivered: number;
  expected: number;
}

function percentiles(samples: number[], expected: number): Latencies {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    min: round(sorted[0] ?? Number.NaN),
    p50: round(at(0.5) ?? Number.NaN),
    p99: round(at(0.99) ?? Number.NaN),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
    delivered: sorted.length,
    expected,
  };
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

interface Scenario {
  /** Where the streams are. */
  streamsOn: Child;
  /** Triggers version `target` and returns its commit time. */
  trigger(target: number): Promise<number>;
  /** Where the memory is read, if it is. */
  memory?: Child;
}

interface ScenarioResult {
  latency: Latencies;
  /** Bytes per idle stream, from heapUsed and RSS, when measured. */
  heapPerStream?: number;
  rssPerStream?: number;
  openMs: number;
}

async function measure(ctx: BenchContext, plan: Plan, s: Scenario): Promise<ScenarioResult> {
  const sessions = await Promise.all(
    Array.from({ length: plan.connections }, () => connectH2(s.streamsOn.grpcPort)),
  );
  try {
    const before = s.memory ? await s.memory.memory() : undefined;
    const streams = new Streams(plan.streams);
    const openStart = nowMs();
    await streams.open(sessions);
    const openMs = nowMs() - openStart;
    ctx.log(`  ${plan.streams} streams open in ${Math.round(openMs)} ms`);
    const after = s.memory ? await s.memory.memory() : undefined;
    const samples: number[] = [];
    for (let r = 0; r < plan.rounds; r++) {
      const target = streams.currentVersion() + 1;
      const arrivals = streams.expect(target);
      const committedAt = await s.trigger(target);
      const times = await arrivals;
      const roundSamples: number[] = [];
      for (const t of times) if (!Number.isNaN(t)) roundSamples.push(t - committedAt);
      const p = percentiles(roundSamples, plan.streams);
      ctx.log(
        `  round ${r + 1}: ${p.delivered}/${plan.streams} delivered, min ${p.min} p50 ${p.p50} p99 ${p.p99} max ${p.max} ms`,
      );
      samples.push(...roundSamples);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (streams.ended > 0) ctx.log(`  warning: ${streams.ended} streams ended early`);
    return {
      latency: percentiles(samples, plan.streams * plan.rounds),
      openMs,
      ...(before && after
        ? {
            heapPerStream: (after.heapUsed - before.heapUsed) / plan.streams,
            rssPerStream: (after.rss - before.rss) / plan.streams,
          }
        : {}),
    };
  } finally {
    for (const session of sessions) session.destroy();
  }
}

/** The current token of the fan-out app, read (and fetched if need be) through `child`. */
async function currentToken(session: http2.ClientHttp2Session): Promise<string> {
  const reply = await unaryCall(
    session,
    GET_PATH,
    toBinary(
      GetTokenRequestSchema,
      create(GetTokenRequestSchema, { appId: FANOUT_APP.id, kind: TokenKind.ACCESS_TOKEN }),
    ),
  );
  const value = fromBinary(GetTokenResponseSchema, reply).token?.value;
  if (!value) throw new Error("GetToken returned no token");
  return value;
}

/**
 * A trigger that reports the current token as rejected through `refresher`
 * (one InvalidateToken call on a connection of its own) and takes the commit
 * time from `refresher`'s in-process watcher.
 */
async function invalidator(
  refresher: Child,
  onInvalidated?: (target: number) => void,
): Promise<{ trigger: Scenario["trigger"]; close(): void }> {
  const session = await connectH2(refresher.grpcPort);
  let value = await currentToken(session);
  return {
    async trigger(target) {
      const committed = refresher.commitAfter(target - 1);
      const reply = await unaryCall(
        session,
        INVALIDATE_PATH,
        toBinary(
          InvalidateTokenRequestSchema,
          create(InvalidateTokenRequestSchema, {
            appId: FANOUT_APP.id,
            kind: TokenKind.ACCESS_TOKEN,
            rejectedValue: value,
            errcode: 40001,
          }),
        ),
      );
      const response = fromBinary(InvalidateTokenResponseSchema, reply);
      if (!response.refreshed || Number(response.token?.version ?? 0n) !== target) {
        throw new Error(
          `InvalidateToken did not refresh to version ${target} (outcome ${response.outcome})`,
        );
      }
      value = response.token?.value ?? "";
      onInvalidated?.(target);
      return committed;
    },
    close: () => session.destroy(),
  };
}

// --- the benchmark -----------------------------------------------------------

export const fanout: Bench = async (ctx) => {
  const plan = PLANS[ctx.mode];
  const n = plan.streams.toLocaleString("en-US");
  const started = nowMs();

  // Baseline: a bare grpc-js server writing one pre-encoded message to each stream.
  ctx.log(`fanout: bare grpc-js baseline, ${n} streams`);
  const bareChild = await Child.start("bare");
  let bare: ScenarioResult;
  try {
    bare = await measure(ctx, plan, {
      streamsOn: bareChild,
      memory: bareChild,
      trigger: (target) => bareChild.push(target),
    });
  } finally {
    await bareChild.close();
  }

  // One replica, memory store.
  ctx.log(`fanout: one replica, ${n} streams`);
  const single = await Child.start("broker");
  let one: ScenarioResult;
  try {
    const inv = await invalidator(single);
    try {
      one = await measure(ctx, plan, { streamsOn: single, memory: single, trigger: inv.trigger });
    } finally {
      inv.close();
    }
  } finally {
    await single.close();
  }

  // Two replicas sharing Redis: streams on B, the refresh on A.
  ctx.log(`fanout: two replicas over Redis, ${n} streams on B, refresh on A`);
  const redis = await startRedisServer();
  let across: ScenarioResult;
  const hopMs: number[] = [];
  try {
    const store = { url: redis.url, prefix: `fanout${process.pid}` };
    const a = await Child.start("broker", store);
    const b = await Child.start("broker", store).catch(async (err) => {
      await a.close();
      throw err;
    });
    try {
      // A fetches and stores the token first (invalidator reads it), so B
      // only ever reads it from Redis.
      let commitA = 0;
      const inv = await invalidator(a, () => undefined);
      try {
        across = await measure(ctx, plan, {
          streamsOn: b,
          trigger: async (target) => {
            const reachedB = b.commitAfter(target - 1);
            commitA = await inv.trigger(target);
            hopMs.push((await reachedB) - commitA);
            return commitA;
          },
        });
      } finally {
        inv.close();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  } finally {
    await redis.stop();
  }

  const totalS = Math.round((nowMs() - started) / 100) / 10;
  const hop = percentiles(hopMs, hopMs.length);
  const rows: BenchRow[] = [
    {
      metric: `WatchToken fan-out, one replica: commit → delivery p50 (${n} streams)`,
      value: one.latency.p50,
      baseline: bare.latency.p50,
      baselineName: "bare grpc-js server writing one message to each stream",
      unit: "ms",
    },
    {
      metric: `WatchToken fan-out, one replica: commit → delivery p99 (${n} streams)`,
      value: one.latency.p99,
      baseline: bare.latency.p99,
      baselineName: "bare grpc-js server writing one message to each stream",
      unit: "ms",
      goal: `≤ ${GOAL_P99_MS} ms`,
      met: complete(one.latency) && one.latency.p99 <= GOAL_P99_MS,
    },
    {
      metric: `WatchToken fan-out, one replica: commit → delivery max (${n} streams)`,
      value: one.latency.max,
      baseline: bare.latency.max,
      baselineName: "bare grpc-js server writing one message to each stream",
      unit: "ms",
    },
    {
      metric: "Memory per idle WatchToken stream, broker heapUsed after GC",
      value: Math.round(one.heapPerStream ?? Number.NaN),
      baseline: Math.round(bare.heapPerStream ?? Number.NaN),
      baselineName: "bare grpc-js server holding the same streams",
      unit: "B",
      goal: `≤ ${GOAL_BYTES_PER_STREAM} B (5 KB)`,
      met: (one.heapPerStream ?? Number.POSITIVE_INFINITY) <= GOAL_BYTES_PER_STREAM,
    },
    {
      metric: "Memory per idle WatchToken stream, broker RSS after GC",
      value: Math.round(one.rssPerStream ?? Number.NaN),
      baseline: Math.round(bare.rssPerStream ?? Number.NaN),
      baselineName: "bare grpc-js server holding the same streams",
      unit: "B",
      goal: `≤ ${GOAL_BYTES_PER_STREAM} B (5 KB)`,
      met: (one.rssPerStream ?? Number.POSITIVE_INFINITY) <= GOAL_BYTES_PER_STREAM,
    },
    {
      metric: `WatchToken fan-out across replicas (Redis): commit on A → delivery on B p50 (${n} streams)`,
      value: across.latency.p50,
      baseline: one.latency.p50,
      baselineName: "one replica, same streams",
      unit: "ms",
    },
    {
      metric: `WatchToken fan-out across replicas (Redis): commit on A → delivery on B p99 (${n} streams)`,
      value: across.latency.p99,
      baseline: one.latency.p99,
      baselineName: "one replica, same streams",
      unit: "ms",
      goal: `≤ baseline + ${GOAL_ACROSS_EXTRA_MS} ms`,
      met: complete(across.latency) && across.latency.p99 <= one.latency.p99 + GOAL_ACROSS_EXTRA_MS,
    },
    {
      metric: `WatchToken fan-out across replicas (Redis): commit on A → delivery on B max (${n} streams)`,
      value: across.latency.max,
      baseline: one.latency.max,
      baselineName: "one replica, same streams",
      unit: "ms",
    },
    {
      metric: "WatchToken fan-out: p99 across replicas minus p99 on one replica",
      value: round(across.latency.p99 - one.latency.p99),
      unit: "ms",
      goal: `≤ ${GOAL_ACROSS_EXTRA_MS} ms`,
      met: across.latency.p99 - one.latency.p99 <= GOAL_ACROSS_EXTRA_MS,
    },
  ];

  const notes = [
    `${n} WatchToken streams over ${plan.connections} HTTP/2 connections from the benchmark process ` +
      "(a minimal gRPC client on node:http2 that timestamps each DATA chunk before decoding); every " +
      "broker runs in a child process (node --expose-gc), so clients and broker do not share an event loop; " +
      "its listen.maxConcurrentStreams is raised from 100 to 1000 per connection for this. " +
      `${plan.rounds} refresh round(s) per scenario, all deliveries pooled (${one.latency.delivered} of ` +
      `${one.latency.expected} delivered on one replica, ${across.latency.delivered} of ${across.latency.expected} across replicas).`,
    "Refresh: one InvalidateToken call with the current value on a connection of its own (the emulator " +
      "answers at once). Commit time: when an in-process watcher, opened in the refreshing broker before " +
      "any client stream, sees the new version, i.e. when the store write has completed and reached the " +
      "replica's watch hub; sent over IPC. Both processes read CLOCK_MONOTONIC (process.hrtime), so the " +
      "difference is the commit → delivery time at each subscriber.",
    `Baseline for one replica: a bare grpc-js server (same message shape) writing one pre-encoded message to ` +
      `each of the same streams, timed from the start of its write loop: p50 ${bare.latency.p50} ms, ` +
      `p99 ${bare.latency.p99} ms, max ${bare.latency.max} ms; the difference is the broker's own fan-out cost ` +
      "(watch hub and the per-stream iterator chain; the message is encoded once and shared). " +
      "The baseline and the broker are measured one after the other, not interleaved, so on a " +
      "machine with noisy neighbours this ratio moves between runs more than the hot path's.",
    "Memory: the broker child's heapUsed and RSS after forced GC (4 rounds) with 0 client streams and then " +
      `with ${n} idle streams (each has had its first message), divided by the stream count; the connections ` +
      "are open in both samples. RSS also counts nghttp2's native per-stream state and is noisier.",
    `Across replicas: two broker children sharing one redis-server; streams on B, the refresh on A; ` +
      `the notification reached B's watch hub a median ${hop.p50} ms (max ${hop.max} ms) after A's commit.`,
    `Stream opening took ${Math.round(one.openMs)} ms on one replica (batches of 500). Whole section: ${totalS} s.`,
  ];
  if (!(one.latency.p99 <= GOAL_P99_MS)) {
    notes.push(
      "What limits the p99 (CPU profiles of the broker child, FANOUT_CHILD_EXEC_ARGV=--cpu-prof): the " +
        "fan-out runs as one pass of microtasks (watch hub → each stream's watch iterator → the security and " +
        "metrics wrappers → the adapter's write), and HTTP/2 frames only leave once the pass ends, so the " +
        "first subscriber waits for the last: latency is about N × per-stream CPU (the min is close to the p50). " +
        `The bare grpc-js server, writing a pre-encoded message and nothing else, already needs ${bare.latency.p99} ms ` +
        `for these ${n} streams on this machine, above the ${GOAL_P99_MS} ms goal; the broker encodes the message once ` +
        "per refresh (shared by every stream), so its extra is the per-stream iterator chain.",
    );
  }
  if (!((one.heapPerStream ?? Number.POSITIVE_INFINITY) <= GOAL_BYTES_PER_STREAM)) {
    notes.push(
      `What limits memory: grpc-js itself holds ${Math.round(bare.heapPerStream ?? Number.NaN)} B of heap per idle stream (the baseline ` +
        `row)${(bare.heapPerStream ?? 0) > GOAL_BYTES_PER_STREAM ? `, already above the ${GOAL_BYTES_PER_STREAM} B goal` : ""}. The broker's extra (heap snapshots, ` +
        "FANOUT_HEAP_SNAPSHOT_DIR=dir) is the per-stream handler state: the call context and its AbortController, " +
        "the watch iterator chain (two async generators: TokenManager.watch and the handler), the wrappers' closures, " +
        "pending promises, and the watch queue.",
    );
  }
  if (ctx.mode === "smoke") notes.push("Smoke run: a few hundred streams, figures not meaningful.");
  return { title: "WatchToken fan-out", rows, notes } satisfies BenchSection;
};

function complete(l: Latencies): boolean {
  return l.delivered === l.expected;
}
