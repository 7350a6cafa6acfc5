import { randomUUID } from "node:crypto";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import { createStore, type StoreBundle } from "../../src/store/create-store.js";
import type { RefreshLock } from "../../src/store/refresh-lock.js";
import { type AppConfig, AppRegistry } from "../../src/token/app.js";
import { DEFAULT_REFRESH_POLICY } from "../../src/token/refresh-policy.js";
import type { ReportBudgetOptions } from "../../src/token/report-budget.js";
import { TokenManager } from "../../src/token/token-manager.js";
import { createWechatClient } from "../../src/upstream/wechat-client.js";
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
 * N token managers ("replicas"), each with its own Redis connections and a
 * random key prefix shared among them, on one fake clock with the emulator.
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
  const prefix = `t-${randomUUID().slice(0, 8)}`;
  const replicas: Replica[] = [];
  for (let i = 0; i < n; i++) {
    const stores = createStore(
      {
        type: "redis",
        url: redisUrl,
        prefix,
        lockTtlMs: options.lockTtlMs ?? 30_000,
        schedulePollMs: options.schedulePollMs ?? 1000,
      },
      {
        clock,
        logger: silentLogger(),
        ...(options.encryptionKeys ? { encryptionKeys: options.encryptionKeys(i) } : {}),
      },
    );
    const manager = new TokenManager({
      apps: new AppRegistry(apps),
      store: stores.store,
      ...(stores.lock
        ? { lock: options.wrapLock ? options.wrapLock(i, stores.lock) : stores.lock }
        : {}),
      ...(stores.dueQueue ? { dueQueue: stores.dueQueue } : {}),
      ...(stores.lockWaitMs ? { lockWaitMs: stores.lockWaitMs } : {}),
      client: createWechatClient({ baseUrl: url, timeoutMs: options.upstreamTimeoutMs ?? 2000 }),
      policy: DEFAULT_REFRESH_POLICY,
      ...(options.reportBudget ? { reportBudget: options.reportBudget } : {}),
      logger: silentLogger(),
      clock,
    });
    await stores.ready();
    manager.start();
    replicas.push({ manager, stores });
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
      for (const r of replicas) {
        await r.manager.close();
        await r.stores.close();
      }
      await emulator.close();
    },
  };
}
