/**
 * Benchmark helpers: many apps, replicas of the broker's core sharing Redis
 * (built by buildCore, src/graph.ts, as in production), an emulator of their
 * own for the co-wechat-api side, and a seeded PRNG.
 */
import { randomUUID } from "node:crypto";
import { createEmulator, type Emulator, type EmulatorOptions } from "../src/emulator/index.js";
import { type BrokerCore, buildCore } from "../src/graph.js";
import { FakeClock } from "../src/shared/fake-clock.js";
import { silentLogger } from "../src/shared/logger.js";
import { Secret } from "../src/shared/secret.js";

export interface BenchApp {
  /** The broker's app id. */
  readonly id: string;
  readonly appid: string;
  readonly secret: string;
}

export interface BenchHarness {
  clock: FakeClock;
  emulator: Emulator;
  replicas: BrokerCore[];
  /** Waits (real time) until no replica is refreshing. */
  quiet(): Promise<void>;
  close(): Promise<void>;
}

/** `count` classic official accounts with distinct, well-formed appids. */
export function benchApps(count: number): BenchApp[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `app${i}`,
    appid: `wx${i.toString(16).padStart(16, "0")}`,
    secret: `bench-secret-${i.toString().padStart(8, "0")}`,
  }));
}

/** A shared fake clock and an emulator on it, listening on loopback. */
export async function startEmulator(
  apps: readonly BenchApp[],
  options: Omit<EmulatorOptions, "clock" | "apps"> = {},
  clock = new FakeClock(),
): Promise<{ clock: FakeClock; emulator: Emulator; url: string }> {
  const emulator = createEmulator({
    ...options,
    clock,
    apps: apps.map((a) => ({ appid: a.appid, secret: a.secret })),
  });
  const { url } = await emulator.listen(0, "127.0.0.1");
  return { clock, emulator, url };
}

/**
 * `n` replicas of the broker's core on one fake clock, sharing a Redis key
 * prefix and the emulator as WeChat (classic tokens, no prefetch).
 */
export async function startBenchReplicas(
  n: number,
  redisUrl: string,
  apps: readonly BenchApp[],
  options: {
    tokenLifetimeSeconds: number;
    schedulePollMs: number;
    emulator?: Omit<EmulatorOptions, "clock" | "apps" | "tokenLifetimeSeconds">;
  },
): Promise<BenchHarness> {
  const { clock, emulator, url } = await startEmulator(apps, {
    ...options.emulator,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds,
  });
  const prefix = `b-${randomUUID().slice(0, 8)}`;
  const replicas: BrokerCore[] = [];
  const close = async () => {
    for (const r of replicas) await r.close();
    await emulator.close();
  };
  try {
    for (let i = 0; i < n; i++) {
      const core = buildCore(
        {
          apps: apps.map((a) => ({
            id: a.id,
            type: "official_account",
            appid: a.appid,
            secret: new Secret(a.secret),
            tokenMode: "classic",
            prefetch: false,
          })),
          store: {
            type: "redis",
            url: redisUrl,
            prefix,
            lockTtlMs: 30_000,
            schedulePollMs: options.schedulePollMs,
          },
          upstream: { baseUrl: url, timeoutMs: 10_000 },
        },
        { logger: silentLogger(), clock },
      );
      replicas.push(core);
      // What these benchmarks measure is the token core: started without the
      // metrics sampler (core.start() would add one ledger read per app every
      // 15 s, which a scrape of /metrics needs and nothing here reads).
      await core.stores.ready();
      core.manager.start();
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    clock,
    emulator,
    replicas,
    async quiet() {
      for (let stable = 0; stable < 3; ) {
        await new Promise((r) => setTimeout(r, 2));
        stable = replicas.some((r) => r.manager.refreshing) ? 0 : stable + 1;
      }
    },
    close,
  };
}

/** A deterministic PRNG (mulberry32), so both sides of a comparison see the same workload. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
