import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import {
  AdminService,
  file_tokenbroker_v1_admin_service,
} from "../gen/tokenbroker/v1/admin_service_pb.js";
import {
  file_tokenbroker_v1_oauth_service,
  OAuthService,
} from "../gen/tokenbroker/v1/oauth_service_pb.js";
import {
  file_tokenbroker_v1_token_service,
  TokenService,
} from "../gen/tokenbroker/v1/token_service_pb.js";
import type { BrokerConfig } from "./config/config.js";
import { securityPolicyOf } from "./config/parse-config.js";
import type { BrokerCore } from "./graph.js";
import { createAdminService } from "./rpc/admin-service.js";
import { rpcInterceptors } from "./rpc/interceptors/index.js";
import { createOAuthService } from "./rpc/oauth-service.js";
import { createTokenService } from "./rpc/token-service.js";
import type { RefusalLog } from "./security/refusal-log.js";
import {
  type HealthStatus,
  healthRegistration,
  reflectionEnabled,
  reflectionRegistrations,
  registration,
  type ServiceRegistration,
} from "./server/index.js";
import type { Logger } from "./shared/logger.js";

/**
 * What both listeners serve, and who may call it: TokenService and
 * AdminService behind one interceptor chain (metrics, authentication,
 * authorization, limits, audit). Health and reflection need no credentials:
 * the allowlist applies at accept, Health/Watch is capped and reflection is
 * served only when configured (by default, on loopback only).
 */
export function brokerServices(
  config: BrokerConfig,
  core: BrokerCore,
  o: { health: HealthStatus; refusals: RefusalLog; audit: Logger; logger: Logger },
): ServiceRegistration[] {
  const { manager, apps, stores, breakers, guard, client, observability, clock, oauth, rollout } =
    core;
  const { audit } = o;
  const guarded = rpcInterceptors({
    policy: securityPolicyOf(config.security),
    clock,
    audit,
    refusals: o.refusals,
    observe: (...a) => observability.metrics.rpcHandled(...a),
    tracing: config.tracing !== undefined,
  });
  return [
    registration(
      TokenService,
      createTokenService({
        manager,
        clock,
        logger: o.logger.child({ component: "rpc" }),
        audit,
        maxStreamAgeMs: config.watch.maxStreamAgeMs,
        maxStreamAgeJitter: config.watch.maxStreamAgeJitter,
        rollout,
      }),
      guarded,
    ),
    registration(
      OAuthService,
      createOAuthService({
        manager,
        exchange: oauth,
        clock,
        logger: o.logger.child({ component: "rpc" }),
        audit,
      }),
      guarded,
    ),
    registration(
      AdminService,
      createAdminService({
        manager,
        apps,
        ledger: stores.ledger,
        breakers,
        guard,
        alerts: observability.alerts,
        client,
        clock,
        audit,
        rollout,
      }),
      guarded,
    ),
    healthRegistration(o.health, {
      maxWatches: config.listen.maxHealthWatches,
      maxWatchesPerPeer: config.listen.maxHealthWatchesPerPeer,
    }),
    ...(reflectionEnabled(config.listen.reflection, [
      config.listen.grpc.host,
      config.listen.connect.host,
    ])
      ? reflectionRegistrations([
          file_tokenbroker_v1_token_service,
          file_tokenbroker_v1_oauth_service,
          file_tokenbroker_v1_admin_service,
          file_grpc_health_v1_health,
          file_grpc_reflection_v1_reflection,
          file_grpc_reflection_v1alpha_reflection,
        ])
      : []),
  ];
}
