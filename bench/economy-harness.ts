/**
 * Benchmark helpers on top of test/helpers/replica-harness.ts: many apps, an
 * emulator of their own for the co-wechat-api side, and a seeded PRNG.
 */
import { createEmulator, type Emulator, type EmulatorOptions } from "../src/emulator/index.js";
import { FakeClock } from "../test/helpers/fake-clock.js";
import {
  type Replica,
  type ReplicaApp,
  type ReplicaHarness,
  startReplicas,
} from "../test/helpers/replica-harness.js";

export type BenchApp = ReplicaApp;
export type BenchReplica = Replica;
export type BenchHarness = ReplicaHarness;

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

/** The test suite's replica harness with the bench's apps (test/helpers/replica-harness.ts). */
export function startBenchReplicas(
  n: number,
  redisUrl: string,
  apps: readonly BenchApp[],
  options: {
    tokenLifetimeSeconds: number;
    schedulePollMs: number;
    emulator?: Omit<EmulatorOptions, "clock" | "apps" | "tokenLifetimeSeconds">;
  },
): Promise<BenchHarness> {
  return startReplicas(n, redisUrl, { ...options, apps, upstreamTimeoutMs: 10_000 });
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
