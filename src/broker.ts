import { HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { TokenService } from "../gen/tokenbroker/v1/token_service_pb.js";
import type { BrokerConfig } from "./config/config.js";
import { securityPolicyOf } from "./config/parse-config.js";
import { ConfigReloader, type ReloadReport } from "./config-reload.js";
import { createFacade } from "./facade/facade.js";
import { type BrokerCore, buildCore, coreSettingsOf } from "./graph.js";
import type { BrokerObservability } from "./observability/broker-observability.js";
import { startMetricsServer } from "./observability/metrics-server.js";
import { startTracing } from "./observability/tracing.js";
import { RefusalLog } from "./security/refusal-log.js";
import {
  AcceptGate,
  HealthStatus,
  type RunningServer,
  startConnectServer,
  startGrpcServer,
} from "./server/index.js";
import { brokerServices } from "./services.js";
import { type Clock, sleep, systemClock } from "./shared/clock.js";
import { createAuditLogger, type Logger } from "./shared/logger.js";
import { warnAtStart } from "./startup-warnings.js";
import type { TokenManager } from "./token/token-manager.js";

export interface BrokerDeps {
  logger: Logger;
  /** The audit stream; built from config.audit when absent. */
  audit?: Logger;
  clock?: Clock;
  /** HTTP client for WeChat; defaults to the global fetch. */
  fetch?: typeof fetch;
  random?: () => number;
}

export interface RunningBroker {
  readonly grpc: RunningServer;
  readonly connect: RunningServer;
  readonly manager: TokenManager;
  /** The composed core (stores, breakers, code exchanges), for diagnosis and tests. */
  readonly core: BrokerCore;
  readonly health: HealthStatus;
  /** Metrics, alerts; and the /metrics URL when a metrics listener is configured. */
  readonly observability: BrokerObservability;
  readonly metricsUrl?: string;
  /** Where the WeChat-compatible façade answers (its own listener, or the Connect port); absent when disabled. */
  readonly facadeUrl?: string;
  /**
   * Applies a re-read config (SIGHUP): apps are added, removed or changed at
   * once; other settings need a restart (reported, running values kept).
   * Throws ConfigErrors, changing nothing, when it cannot be applied.
   */
  reload(next: BrokerConfig): ReloadReport;
  /** Drains: health NOT_SERVING, stop accepting, end streams with UNAVAILABLE, stop refreshing. Idempotent. */
  close(): Promise<void>;
}

const TOKEN_SERVICE = TokenService.typeName;

/**
 * Requests are a few hundred bytes (the largest field, a rejected token, is
 * capped at 2048 characters), so anything near this is hostile or broken.
 */
const MAX_REQUEST_BYTES = 64 * 1024;

/** Builds every component from the config and starts both listeners. */
export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<RunningBroker> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  const audit = deps.audit ?? createAuditLogger(config.audit.destination);
  // Before the core, so its first refreshes are traced too.
  const tracing = config.tracing ? startTracing(config.tracing, logger) : undefined;
  const core = buildCore(coreSettingsOf(config), {
    logger,
    clock,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.random ? { random: deps.random } : {}),
  });
  const { manager, apps, observability } = core;
  const reloader = new ConfigReloader(config, {
    apps,
    manager,
    logger: logger.child({ component: "config" }),
  });

  // NOT_SERVING until both listeners are up, so load balancers wait for us.
  const health = new HealthStatus();
  health.set("", HealthCheckResponse_ServingStatus.NOT_SERVING);
  health.set(TOKEN_SERVICE, HealthCheckResponse_ServingStatus.NOT_SERVING);

  // One refusal log for both listeners: one stream, one count per kind of refusal.
  const refusals = new RefusalLog({ audit, clock });
  const services = brokerServices(config, core, { health, refusals, audit, logger });
  const { allowCidrs, trustedProxies } = config.security;
  const listenerOptions = {
    services,
    logger,
    refusals,
    maxReceiveMessageBytes: MAX_REQUEST_BYTES,
    idleConnectionMs: config.listen.idleTimeoutMs,
    maxConcurrentStreams: config.listen.maxConcurrentStreams,
    requestTimeoutMs: config.listen.requestTimeoutMs,
    // Empty or absent: no allowlist (as in the per-call check).
    ...(allowCidrs?.length && {
      acceptGate: new AcceptGate([...allowCidrs, ...(trustedProxies ?? [])], refusals),
    }),
    ...(config.security.tls ? { tls: config.security.tls } : {}),
  };
  // The WeChat-compatible façade runs the same services, chain and policy.
  const facade = config.facade.enabled
    ? createFacade({
        config: config.facade,
        services,
        apps,
        manager,
        policy: securityPolicyOf(config.security),
        refusals,
        upstream: config.upstream,
        clock,
        logger,
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
        observe: (...a) => observability.metrics.rpcHandled(...a),
      })
    : undefined;
  const facadeOnConnect = facade !== undefined && config.facade.listen === undefined;
  const grpc = await startGrpcServer({
    host: config.listen.grpc.host,
    port: config.listen.grpc.port,
    ...listenerOptions,
  });
  let connect: RunningServer;
  try {
    connect = await startConnectServer({
      host: config.listen.connect.host,
      port: config.listen.connect.port,
      ...listenerOptions,
      corsAllowedOrigins: [...config.cors.allowedOrigins],
      ...(facadeOnConnect ? { httpRoutes: facade } : {}),
    });
  } catch (err) {
    await grpc.close({ graceMs: 0 });
    throw err;
  }
  let facadeServer: RunningServer | undefined;
  if (facade !== undefined && config.facade.listen !== undefined) {
    try {
      facadeServer = await startConnectServer({
        ...listenerOptions,
        host: config.facade.listen.host,
        port: config.facade.listen.port,
        services: [],
        httpRoutes: facade,
      });
    } catch (err) {
      await Promise.all([grpc.close({ graceMs: 0 }), connect.close({ graceMs: 0 })]);
      throw err;
    }
  }
  const facadeUrl = facadeServer?.url ?? (facadeOnConnect ? connect.url : undefined);
  // Until the store hears its own writes, a replica could miss updates:
  // stay NOT_SERVING (load balancers keep away) and say why.
  const waiting = setTimeout(
    () => logger.warn({ store: config.store.type }, "waiting for the shared store before serving"),
    2000,
  );
  await core.start().finally(() => clearTimeout(waiting));
  const metricsServer = config.metrics.listen
    ? await startMetricsServer({
        host: config.metrics.listen.host,
        port: config.metrics.listen.port,
        metrics: observability.metrics,
        logger,
        ...(config.metrics.tls && config.security.tls ? { tls: config.security.tls } : {}),
        ...(config.metrics.apiKeySha256 ? { apiKeySha256: config.metrics.apiKeySha256 } : {}),
        ...(config.metrics.allowCidrs ? { allowCidrs: config.metrics.allowCidrs } : {}),
      })
    : undefined;
  health.set("", HealthCheckResponse_ServingStatus.SERVING);
  health.set(TOKEN_SERVICE, HealthCheckResponse_ServingStatus.SERVING);
  warnAtStart(config, logger, {
    grpc: grpc.url,
    connect: connect.url,
    metrics: metricsServer?.url,
  });
  logger.info(
    {
      grpc: grpc.url,
      connect: connect.url,
      ...(facadeUrl ? { facade: facadeUrl } : {}),
      apps: config.apps.map((a) => a.id),
      upstream: config.upstream.baseUrl,
    },
    "token broker serving",
  );

  let closing: Promise<void> | undefined;
  return {
    grpc,
    connect,
    manager,
    core,
    health,
    observability,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    ...(facadeUrl ? { facadeUrl } : {}),
    reload: (next) => reloader.apply(next),
    close() {
      closing ??= (async () => {
        reloader.close();
        const { graceMs, preStopDelayMs } = config.shutdown;
        logger.info({ graceMs, preStopDelayMs }, "shutting down");
        health.drain();
        // Health says NOT_SERVING while calls and streams are still served, so
        // endpoints and balancers drop this replica before its listeners go.
        if (preStopDelayMs > 0) await sleep(clock, preStopDelayMs);
        await Promise.all([
          grpc.close({ graceMs: config.shutdown.graceMs }),
          connect.close({ graceMs: config.shutdown.graceMs }),
          facadeServer?.close({ graceMs: config.shutdown.graceMs }),
        ]);
        await core.close();
        await tracing?.shutdown();
        await metricsServer?.close();
        refusals.close();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}
