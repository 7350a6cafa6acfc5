import { setMaxListeners } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";
import { buildCore } from "../../src/graph.js";
import type { BrokerObservability } from "../../src/observability/broker-observability.js";
import { type MetricsServer, startMetricsServer } from "../../src/observability/metrics-server.js";
import type { EndpointBudgets, QuotaLedger } from "../../src/quota/index.js";
import { createLogger, silentLogger } from "../../src/shared/logger.js";
import { Secret } from "../../src/shared/secret.js";
import type { AppConfig } from "../../src/token/app.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "../../src/token/refresh-policy.js";
import type { TokenManager } from "../../src/token/token-manager.js";
import type { UpstreamBreakers } from "../../src/upstream/upstream-breakers.js";
import { FakeClock, flushMicrotasks } from "./fake-clock.js";

/** An official account (classic token), the app most scenarios use: broker id "oa". */
export const OA = {
  id: "oa",
  appid: "wx00000000000res01",
  secret: "oa-secret-resilience-0123456789",
};
/** A mini program (classic token): broker id "mp". */
export const MP = {
  id: "mp",
  appid: "wx00000000000res02",
  secret: "mp-secret-resilience-9876543210",
};
export const TOKEN_PATH = "/cgi-bin/token";

/** One alert as the generic webhook format posts it. */
export interface AlertDelivery {
  alert: string;
  state: "firing" | "resolved";
  severity: string;
  app: string | null;
  kind: string | null;
  summary: string;
  details: Record<string, string | number | boolean>;
  at: string;
  source: string;
}

export interface ResilienceOptions {
  /** Overrides of DEFAULT_REFRESH_POLICY. */
  policy?: Partial<RefreshPolicy>;
  /** The broker's own daily budgets (MemoryQuotaLedger `budgets.defaults`). */
  budgets?: EndpointBudgets;
  /** The share of each budget reports may not use (MemoryQuotaLedger `budgets.scheduledReserve`). */
  scheduledReserve?: number;
  /** Fake clock start, epoch ms (default 2026-01-01 04:00 UTC = 12:00 China time). */
  startMs?: number;
  tokenLifetimeSeconds?: number;
  /** Real-time delays of the guard's inline retries; small so tests stay fast. */
  retryDelaysMs?: readonly number[];
  /** Emulator options beyond the apps, clock and lifetime (e.g. `wrongSecretErrcode`). */
  emulator?: Omit<EmulatorOptions, "apps" | "clock" | "tokenLifetimeSeconds">;
}

export interface ResilienceHarness {
  readonly clock: FakeClock;
  readonly emulator: Emulator;
  readonly emulatorUrl: string;
  readonly manager: TokenManager;
  readonly breakers: UpstreamBreakers;
  readonly ledger: QuotaLedger;
  readonly observability: BrokerObservability;
  /** Every request the webhook receiver got, parsed, in arrival order. */
  readonly deliveries: AlertDelivery[];
  /** The raw bodies the webhook receiver got. */
  readonly rawDeliveries: string[];
  /** Deliveries of one alert in one state. */
  alerts(name: string, state: "firing" | "resolved"): AlertDelivery[];
  /** Everything the broker's components logged (JSON lines). */
  logs(): string;
  /** Calls the emulator received on `endpoint` for `appid` (faulted ones included). */
  calls(endpoint?: string, appid?: string): number;
  /** Successful calls the emulator answered on `endpoint` for `appid`. */
  successes(endpoint?: string, appid?: string): number;
  /**
   * Moves the fake clock forward in steps of `stepMs` (≤ 10 s recommended: the
   * alert manager's 30 s delivery timeout runs on this clock), and after each
   * step waits in real time until refreshes and alert deliveries are done, so
   * what happens at a fake instant completes at that instant.
   */
  advance(ms: number, options?: StepOptions): Promise<void>;
  /** `advance` to an absolute fake time. */
  advanceTo(at: number, options?: StepOptions): Promise<void>;
  /** Waits (real time) for refreshes and alert deliveries in flight. */
  settle(): Promise<void>;
  /** Starts the /metrics listener (like broker.ts with `metrics.listen`); returns its base URL. */
  startMetrics(): Promise<string>;
  /** GET /metrics over HTTP. */
  scrape(): Promise<string>;
  /** A token fetched from the emulator directly, as a foreign party would. */
  foreignFetch(app?: { appid: string; secret: string }): Promise<string>;
  close(): Promise<void>;
}

export interface StepOptions {
  stepMs?: number;
  /** Runs after every step (after settling, and settled after), with the fake time. */
  onStep?: (now: number) => void | Promise<void>;
}

/**
 * The broker's core as production builds it (buildCore, src/graph.ts):
 * observability with a generic webhook notifier pointing at a local receiver,
 * the memory store and its quota ledger, breakers with the production policy
 * and the guard. WeChat is the emulator over loopback HTTP. Everything shares
 * one FakeClock; the guard's inline retries wait `retryDelaysMs` (real time).
 */
export async function startResilienceHarness(
  options: ResilienceOptions = {},
): Promise<ResilienceHarness> {
  const clock = new FakeClock(options.startMs);
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };
  try {
    const receiver = await startReceiver();
    cleanups.push(receiver.close);

    const emulator = createEmulator({
      clock,
      apps: [
        { appid: OA.appid, secret: OA.secret, type: "official_account" },
        { appid: MP.appid, secret: MP.secret, type: "mini_program" },
      ],
      tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 7200,
      logger: silentLogger(),
      ...options.emulator,
    });
    const { url: emulatorUrl } = await emulator.listen(0, "127.0.0.1");
    cleanups.push(() => emulator.close());

    const logLines: string[] = [];
    const logger = createLogger({
      level: "info",
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          logLines.push(chunk.toString());
          done();
        },
      }),
    });

    const appConfigs: AppConfig[] = [
      {
        id: OA.id,
        type: "official_account",
        appid: OA.appid,
        secret: new Secret(OA.secret),
        tokenMode: "classic",
        prefetch: false,
      },
      {
        id: MP.id,
        type: "mini_program",
        appid: MP.appid,
        secret: new Secret(MP.secret),
        tokenMode: "classic",
        prefetch: false,
      },
    ];
    // The production wiring (src/graph.ts), on the memory store.
    const core = buildCore(
      {
        apps: appConfigs,
        store: { type: "memory" },
        upstream: { baseUrl: emulatorUrl, timeoutMs: 2000 },
        refresh: { ...DEFAULT_REFRESH_POLICY, ...options.policy },
        quota: {
          defaults: options.budgets ?? {},
          ...(options.scheduledReserve === undefined
            ? {}
            : { scheduledReserve: options.scheduledReserve }),
        },
        webhooks: [{ url: new Secret(`${receiver.url}hooks/alerts`), format: "generic" }],
      },
      {
        logger,
        clock,
        retryDelaysMs: options.retryDelaysMs ?? [5, 10],
        random: () => 0.5, // retry backoff without jitter: delays are exactly 1, 2, 4 … 60 s
      },
    );
    const { manager, breakers, observability } = core;
    let metricsServer: MetricsServer | undefined;
    cleanups.push(async () => {
      await core.close();
      await metricsServer?.close();
    });
    await core.start();

    const counter = (endpoint: string, appid: string) =>
      emulator.control.counters()[endpoint]?.[appid];

    const settle = async () => {
      const deadline = Date.now() + 5000;
      for (;;) {
        await flushMicrotasks();
        if (!manager.refreshing) break;
        if (Date.now() > deadline) throw new Error("a refresh did not finish within 5 s");
        await new Promise((r) => setTimeout(r, 2));
      }
      await observability.alerts.drain();
      await flushMicrotasks();
    };

    const advanceTo = async (at: number, o: StepOptions = {}) => {
      const stepMs = o.stepMs ?? 1000;
      while (clock.now() < at) {
        await clock.advance(Math.min(stepMs, at - clock.now()));
        await settle();
        if (o.onStep) {
          await o.onStep(clock.now());
          await settle();
        }
      }
    };

    return {
      clock,
      emulator,
      emulatorUrl,
      manager,
      breakers,
      ledger: core.stores.ledger,
      observability,
      deliveries: receiver.deliveries,
      rawDeliveries: receiver.raw,
      alerts: (name, state) =>
        receiver.deliveries.filter((d) => d.alert === name && d.state === state),
      logs: () => logLines.join(""),
      calls: (endpoint = TOKEN_PATH, appid = OA.appid) =>
        emulator.control.callCount(endpoint, appid),
      successes: (endpoint = TOKEN_PATH, appid = OA.appid) =>
        counter(endpoint, appid)?.successes ?? 0,
      advance: (ms, o) => advanceTo(clock.now() + ms, o),
      advanceTo,
      settle,
      async startMetrics() {
        metricsServer ??= await startMetricsServer({
          host: "127.0.0.1",
          port: 0,
          metrics: observability.metrics,
          logger,
        });
        return metricsServer.url;
      },
      async scrape() {
        if (!metricsServer) throw new Error("call startMetrics() first");
        const res = await fetch(`${metricsServer.url}metrics`);
        if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
        return res.text();
      },
      async foreignFetch(app = OA) {
        const query = new URLSearchParams({
          grant_type: "client_credential",
          appid: app.appid,
          secret: app.secret,
        });
        const res = await fetch(`${emulatorUrl}/cgi-bin/token?${query}`);
        const body = (await res.json()) as { access_token?: string; errcode?: number };
        if (!body.access_token) throw new Error(`foreign fetch failed: errcode ${body.errcode}`);
        return body.access_token;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A webhook receiver on a free loopback port that answers 200 and keeps every body. */
async function startReceiver() {
  const deliveries: AlertDelivery[] = [];
  const raw: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      raw.push(body);
      try {
        deliveries.push(JSON.parse(body) as AlertDelivery);
      } catch {
        // kept in `raw`; a test comparing counts sees the difference
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    deliveries,
    raw,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The value of one sample in a Prometheus text scrape: the line of `name`
 * whose labels include every one in `labels`. Undefined when there is none;
 * throws when several lines match (the labels were not specific enough).
 */
export function sample(
  scrape: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found: number[] = [];
  for (const line of scrape.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have.set(l[1] ?? "", l[2] ?? "");
    }
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) found.push(Number(m[3]));
  }
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match`);
  return found[0];
}

/** A signal that never aborts, shared by many concurrent calls. */
export const never = new AbortController().signal;
setMaxListeners(0, never);
