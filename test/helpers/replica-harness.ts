import { randomUUID } from "node:crypto";
import type { RefreshLock } from "../../src/core/ports/refresh-lock.js";
import type { StoreBundle } from "../../src/create-store.js";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";
import { type BrokerCore, buildCore } from "../../src/graph.js";
import { silentLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import type { AppConfig } from "../../src/token/app.js";
import type { ReportBudgetOptions } from "../../src/token/report-budget.js";
import type { TokenManager } from "../../src/token/token-manager.js";
import { FakeClock } from "./fake-clock.js";

export const CLASSIC = { appid: "wx0000000000000rc1", secret: "classic-secret-0123" };
export const STABLE = { appid: "wx0000000000000rs1", secret: "stable-secret-01234" };

export interface ReplicaApp {
  /** The broker's app id. */
  readonly id: string;
  readonly appid: string;
  readonly secret: string;
  readonly tokenMode?: "classic" | "stable";
}

const DEFAULT_APPS: readonly ReplicaApp[] = [
  { id: "classic", ...CLASSIC },
  { id: "stable", ...STABLE, tokenMode: "stable" },
];

export interface Replica {
  manager: TokenManager;
  stores: StoreBundle;
  core: BrokerCore;
}

export interface ReplicaHarness {
  clock: FakeClock;
  /** The emulator's base URL. */
  url: string;
  /** The Redis key prefix the replicas share. */
  prefix: string;
  emulator: Emulator;
  replicas: Replica[];
  calls(endpoint: string, appid?: string): number;
  /** Waits (real time) until no replica is refreshing. */
  quiet(): Promise<void>;
  close(): Promise<void>;
}

/**
 * N broker cores ("replicas", built by buildCore as in production), each with
 * its own Redis connections and a random key prefix shared among them, on one
 * fake clock with the emulator.
 * Apps: "classic" (/cgi-bin/token) and "stable" (/cgi-bin/stable_token).
 */
export async function startReplicas(
  n: number,
  redisUrl: string,
  options: {
    tokenLifetimeSeconds?: number;
    schedulePollMs?: number;
    lockTtlMs?: number;
    /** Encryption keys per replica (index i), e.g. during a key rotation. */
    encryptionKeys?: (i: number) => { id: string; key: Secret }[];
    /** The apps (official accounts); default "classic" and "stable" below. */
    apps?: readonly ReplicaApp[];
    /** Per request to the emulator (default 2000 ms). */
    upstreamTimeoutMs?: number;
    /** Wraps replica i's refresh lock, e.g. to act in the moment a lock attempt fails. */
    wrapLock?: (i: number, lock: RefreshLock) => RefreshLock;
    /** More emulator options (e.g. quota limits). */
    emulator?: Omit<EmulatorOptions, "clock" | "apps" | "tokenLifetimeSeconds">;
    /** Refreshes reports may cause per credential (the manager's default when absent). */
    reportBudget?: ReportBudgetOptions;
    /** The Redis key prefix (a fresh random one when absent): replicas restarted onto an earlier cluster's data. */
    prefix?: string;
  } = {},
): Promise<ReplicaHarness> {
  const clock = new FakeClock();
  const wanted = options.apps ?? DEFAULT_APPS;
  const emulator = createEmulator({
    ...options.emulator,
    clock,
    apps: wanted.map((a) => ({ appid: a.appid, secret: a.secret })),
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 7200,
  });
  const { url } = await emulator.listen(0, "127.0.0.1");
  const apps: AppConfig[] = wanted.map((a) => ({
    id: a.id,
    type: "official_account",
    appid: a.appid,
    secret: new Secret(a.secret),
    tokenMode: a.tokenMode ?? "classic",
    prefetch: false,
  }));
  const prefix = options.prefix ?? `t-${randomUUID().slice(0, 8)}`;
  const replicas: Replica[] = [];
  const { wrapLock } = options;
  for (let i = 0; i < n; i++) {
    // The production wiring (src/graph.ts), one core per replica.
    const core = buildCore(
      {
        apps,
        store: {
          type: "redis",
          url: redisUrl,
          prefix,
          lockTtlMs: options.lockTtlMs ?? 30_000,
          schedulePollMs: options.schedulePollMs ?? 1000,
        },
        upstream: { baseUrl: url, timeoutMs: options.upstreamTimeoutMs ?? 2000 },
        ...(options.encryptionKeys ? { encryptionKeys: options.encryptionKeys(i) } : {}),
        ...(options.reportBudget ? { reportBudget: options.reportBudget } : {}),
      },
      {
        logger: silentLogger(),
        clock,
        ...(wrapLock ? { wrapLock: (lock: RefreshLock) => wrapLock(i, lock) } : {}),
      },
    );
    await core.start();
    const { manager, stores } = core;
    replicas.push({ manager, stores, core });
  }
  return {
    clock,
    url,
    emulator,
    replicas,
    prefix,
    calls: (endpoint, appid) => emulator.control.callCount(endpoint, appid),
    async quiet() {
      for (let stable = 0; stable < 3; ) {
        await new Promise((r) => setTimeout(r, 2));
        stable = replicas.some((r) => r.manager.refreshing) ? 0 : stable + 1;
      }
    },
    async close() {
      for (const r of replicas) await r.core.close();
      await emulator.close();
    },
  };
}
