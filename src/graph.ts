import type {
  BrokerConfig,
  EmailAlertConfig,
  StoreConfig,
  WebhookConfig,
} from "./config/config.js";
import type { KindRegistry } from "./core/kind-registry.js";
import type { RefreshLock } from "./core/ports/refresh-lock.js";
import type { StoreDurability } from "./core/ports/token-store.js";
import { createStore, type StoreBundle } from "./create-store.js";
import { createOAuthClient } from "./credentials/wechat/oauth-client.js";
import { createWechatClient, type WechatClient } from "./credentials/wechat/wechat-client.js";
import { createWecomClient } from "./credentials/wecom/wecom-client.js";
import { checkGrantDurability, grantAtRisk } from "./durability-check.js";
import { CodeExchange } from "./oauth/code-exchange.js";
import {
  type BrokerObservability,
  createObservability,
} from "./observability/broker-observability.js";
import { SupersededMonitor } from "./observability/superseded-monitor.js";
import type { EndpointBudgets, QuotaBudgets } from "./quota/index.js";
import { type Clock, systemClock } from "./shared/clock.js";
import type { Logger } from "./shared/logger.js";
import type { Secret } from "./shared/secret.js";
import { type AppConfig, AppRegistry } from "./token/app.js";
import { AppliedRollout } from "./token/applied-rollout.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "./token/refresh-policy.js";
import type { ReportBudgetOptions } from "./token/report-budget.js";
import { TokenManager } from "./token/token-manager.js";
import { type BreakerPolicy, UpstreamBreakers } from "./upstream/upstream-breakers.js";
import { UpstreamGuard } from "./upstream/upstream-guard.js";

/**
 * What the core reads from the configuration. `coreSettingsOf` takes it from
 * a BrokerConfig; test harnesses and benchmarks write it directly, so they
 * get the production wiring without going through a config file.
 */
export interface CoreSettings {
  readonly apps: readonly AppConfig[];
  readonly store: StoreConfig;
  readonly upstream: {
    readonly baseUrl: string;
    readonly timeoutMs: number;
    /** WeCom's host (default WeCom's own); absent: WeCom's own host. */
    readonly wecomBaseUrl?: string;
  };
  /** DEFAULT_REFRESH_POLICY when absent. */
  readonly refresh?: RefreshPolicy;
  /** The quota ledger's budgets (DEFAULT_BUDGETS when absent). */
  readonly quota?: QuotaBudgets;
  /** Refreshes reports may cause per credential (the manager's default when absent). */
  readonly reportBudget?: ReportBudgetOptions;
  /** Encryption at rest in Redis (the first key encrypts). */
  readonly encryptionKeys?: readonly { id: string; key: Secret }[];
  readonly acceptPlaintextUntil?: number;
  readonly webhooks?: readonly WebhookConfig[];
  /** E-mail alerts through SMTP; none when absent. */
  readonly email?: EmailAlertConfig;
  /** Users' credentials held in memory at most (the manager's default when absent). */
  readonly maxUserTokens?: number;
  /** Applied-version feedback (AckToken): how often clients renew, and the alert's lead. */
  readonly watch?: { readonly ackRenewMs: number; readonly supersededAlertLeadMs: number };
}

/**
 * The process around the core: time, randomness, I/O and logs. The options
 * marked "tests" replace a production default; production passes none of them.
 */
export interface CoreDeps {
  logger: Logger;
  clock?: Clock;
  /** Randomness in [0, 1) for retry backoff. */
  random?: () => number;
  /** HTTP client for WeChat; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Tests: refresh-time jitter per credential version (deterministic by default). */
  jitter?: (id: string, version: number) => number;
  /** Tests: the circuit breakers' policy (DEFAULT_BREAKER_POLICY when absent). */
  breakerPolicy?: BreakerPolicy;
  /** Tests: real-time delays of a caller's inline retries of a WeChat fault. */
  retryDelaysMs?: readonly number[];
  /** Tests: wraps the refresh lock, e.g. to act in the moment a lock attempt fails. */
  wrapLock?: (lock: RefreshLock) => RefreshLock;
  /** Tests: the registered account types and kinds (src/credentials' KINDS when absent). */
  kinds?: KindRegistry;
}

/** The broker without its listeners: what serves and refreshes credentials. */
export interface BrokerCore {
  readonly clock: Clock;
  readonly apps: AppRegistry;
  readonly observability: BrokerObservability;
  readonly stores: StoreBundle;
  readonly breakers: UpstreamBreakers;
  readonly guard: UpstreamGuard;
  readonly client: WechatClient;
  readonly manager: TokenManager;
  /** Users' code exchanges (OAuthService.ExchangeCode). */
  readonly oauth: CodeExchange;
  /** Which versions clients use (AckToken), counted over the replicas sharing the store. */
  readonly rollout: AppliedRollout;
  /** Waits until the store hears its own writes, then starts refreshing and sampling metrics. */
  start(): Promise<void>;
  /** Stops refreshing, then closes breakers, observability and the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * The one composition of the core: production (src/broker.ts), the test
 * harnesses and the benchmarks all build the broker here. No I/O starts
 * until `start()` (the Redis client connects in the background).
 */
export function buildCore(settings: CoreSettings, deps: CoreDeps): BrokerCore {
  const clock = deps.clock ?? systemClock;
  const { logger } = deps;
  const observability = createObservability({
    clock,
    logger,
    webhooks: settings.webhooks ?? [],
    ...(settings.email ? { email: settings.email } : {}),
  });
  const stores = createStore(settings.store, {
    clock,
    logger,
    ...(settings.encryptionKeys ? { encryptionKeys: settings.encryptionKeys } : {}),
    ...(settings.acceptPlaintextUntil === undefined
      ? {}
      : { acceptPlaintextUntil: settings.acceptPlaintextUntil }),
    ...(settings.quota ? { budgets: settings.quota } : {}),
  });
  const upstreamLogger = logger.child({ component: "upstream" });
  const breakers = new UpstreamBreakers({
    clock,
    logger: upstreamLogger,
    ...(deps.breakerPolicy ? { policy: deps.breakerPolicy } : {}),
    onStateChange: observability.onBreakerState,
  });
  const guard = new UpstreamGuard({
    breakers,
    clock,
    logger: upstreamLogger,
    quota: stores.ledger,
    observe: observability.observeUpstream,
    ...(deps.retryDelaysMs ? { retryDelaysMs: deps.retryDelaysMs } : {}),
  });
  const http = {
    baseUrl: settings.upstream.baseUrl,
    timeoutMs: settings.upstream.timeoutMs,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  };
  const client = createWechatClient(http);
  const upstreams = {
    wechat: client,
    oauth: createOAuthClient(http),
    wecom: createWecomClient({
      ...http,
      baseUrl: settings.upstream.wecomBaseUrl ?? "https://qyapi.weixin.qq.com",
    }),
  };
  const apps = new AppRegistry(settings.apps, deps.kinds);
  const manager = new TokenManager({
    apps,
    upstreams,
    gate: guard,
    events: observability.events,
    store: stores.store,
    lock: deps.wrapLock ? deps.wrapLock(stores.lock) : stores.lock,
    dueQueue: stores.dueQueue,
    ...(stores.lockWaitMs ? { lockWaitMs: stores.lockWaitMs } : {}),
    policy: settings.refresh ?? DEFAULT_REFRESH_POLICY,
    ...(settings.reportBudget ? { reportBudget: settings.reportBudget } : {}),
    logger: logger.child({ component: "tokens" }),
    ...(settings.maxUserTokens ? { maxSubjectEntries: settings.maxUserTokens } : {}),
    clock,
    ...(deps.random ? { random: deps.random } : {}),
    ...(deps.jitter ? { jitter: deps.jitter } : {}),
  });

  const oauth = new CodeExchange({
    ledger: stores.exchangeLedger,
    upstreams,
    gate: guard,
    grants: manager.grants,
    clock,
    logger: logger.child({ component: "oauth" }),
    // Longer than any upstream call, so a live holder never loses its claim.
    claimTtlMs: settings.upstream.timeoutMs * 2 + 5_000,
    onGrantStored: () => {
      if (durability && !durability.durable) grantAtRisk(observability.alerts, durability);
    },
  });
  let durability: StoreDurability | undefined;

  const rollout = new AppliedRollout({
    applied: stores.applied,
    renewMs: settings.watch?.ackRenewMs ?? 60_000,
  });
  const superseded = new SupersededMonitor({
    manager,
    rollout,
    alerts: observability.alerts,
    metrics: observability.metrics,
    clock,
    logger: logger.child({ component: "alerts" }),
    leadMs: settings.watch?.supersededAlertLeadMs ?? 120_000,
  });

  let closing: Promise<void> | undefined;
  return {
    clock,
    apps,
    observability,
    stores,
    breakers,
    guard,
    client,
    manager,
    oauth,
    rollout,
    async start() {
      await stores.ready();
      durability = await checkGrantDurability({
        store: stores.store,
        apps,
        alerts: observability.alerts,
        logger,
      });
      manager.start();
      observability.sample(manager, stores.ledger, apps);
      superseded.start();
    },
    close() {
      closing ??= (async () => {
        superseded.stop();
        await manager.close();
        breakers.close();
        await observability.close();
        await stores.close();
      })();
      return closing;
    },
  };
}

/** The core's part of a validated broker config. */
export function coreSettingsOf(config: BrokerConfig): CoreSettings {
  const { security, quota } = config;
  return {
    apps: config.apps,
    store: config.store,
    upstream: config.upstream,
    refresh: config.refresh,
    quota: {
      defaults: quota.budgets as EndpointBudgets,
      apps: quota.apps as Record<string, EndpointBudgets>,
      groupDefaults: quota.corpBudgets as EndpointBudgets,
      groups: quota.corps as Record<string, EndpointBudgets>,
      scheduledReserve: quota.scheduledReserve,
    },
    reportBudget: {
      burst: config.invalidate.refreshBurst,
      refillMs: config.invalidate.refreshRefillMs,
    },
    encryptionKeys: security.encryptionKeys,
    ...(security.acceptPlaintextUntil === undefined
      ? {}
      : { acceptPlaintextUntil: security.acceptPlaintextUntil }),
    webhooks: config.alerts.webhooks,
    ...(config.alerts.email ? { email: config.alerts.email } : {}),
    maxUserTokens: config.cache.maxUserTokens,
    watch: {
      ackRenewMs: config.watch.ackRenewMs,
      supersededAlertLeadMs: config.watch.supersededAlertLeadMs,
    },
  };
}
