import { setMaxListeners } from "node:events";
import type { TokenStore } from "../../src/core/ports/token-store.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { buildCore } from "../../src/graph.js";
import { silentLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import type { AppConfig } from "../../src/token/app.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "../../src/token/refresh-policy.js";
import type { TokenManager } from "../../src/token/token-manager.js";
import { DEFAULT_BREAKER_POLICY } from "../../src/upstream/upstream-breakers.js";
import { FakeClock } from "./fake-clock.js";

export const OA = { appid: "wx0000000000000oa1", secret: "oa-secret-0123456789" };
export const STABLE = { appid: "wx0000000000000st1", secret: "st-secret-0123456789" };

export interface TokenHarness {
  clock: FakeClock;
  emulator: Emulator;
  emulatorUrl: string;
  manager: TokenManager;
  store: TokenStore;
  /** Calls the emulator received on one endpoint, e.g. "/cgi-bin/token". */
  calls(endpoint: string, appid?: string): number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  policy?: Partial<RefreshPolicy>;
  tokenLifetimeSeconds?: number;
  timeoutMs?: number;
}

/**
 * The broker's core (buildCore, src/graph.ts) with the real emulator over
 * loopback HTTP as WeChat, both on one fake clock. Apps: "oa" (official account, classic token) and "st" (official
 * account, stable token).
 */
export async function startTokenHarness(options: HarnessOptions = {}): Promise<TokenHarness> {
  const clock = new FakeClock();
  const emulator = createEmulator({
    clock,
    apps: [
      { ...OA, type: "official_account" },
      { ...STABLE, type: "official_account" },
    ],
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 7200,
  });
  const { url } = await emulator.listen(0, "127.0.0.1");
  const apps: AppConfig[] = [
    {
      id: "oa",
      type: "official_account",
      appid: OA.appid,
      secret: new Secret(OA.secret),
      tokenMode: "classic",
      prefetch: false,
    },
    {
      id: "st",
      type: "official_account",
      appid: STABLE.appid,
      secret: new Secret(STABLE.secret),
      tokenMode: "stable",
      prefetch: false,
    },
  ];
  // The production wiring (src/graph.ts) on the memory store. These tests
  // measure the refresh schedule's own backoff, so the breaker stays out of the
  // way (a lenient volume) and callers get no inline retries; test/resilience
  // uses the production policy.
  const core = buildCore(
    {
      apps,
      store: { type: "memory" },
      upstream: { baseUrl: url, timeoutMs: options.timeoutMs ?? 2000 },
      refresh: { ...DEFAULT_REFRESH_POLICY, ...options.policy },
    },
    {
      logger: silentLogger(),
      clock,
      random: () => 0.5,
      jitter: () => 0.5,
      breakerPolicy: { ...DEFAULT_BREAKER_POLICY, volumeThreshold: 1_000_000 },
      retryDelaysMs: [],
    },
  );
  await core.start();
  const { manager } = core;
  return {
    clock,
    emulator,
    emulatorUrl: url,
    manager,
    store: core.stores.store,
    calls: (endpoint, appid) => emulator.control.callCount(endpoint, appid),
    async close() {
      await core.close();
      await emulator.close();
    },
  };
}

/** Polls `condition` (real time) until it holds; for effects of real HTTP round trips. */
export async function eventually(
  condition: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A signal that never aborts, shared by many concurrent calls in a test. */
export const never = new AbortController().signal;
setMaxListeners(0, never);
