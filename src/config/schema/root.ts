import { ONLY_WHEN_VALID, section } from "../../shared/schema.js";
import { alertsSchema } from "./alerts.js";
import { appsSchema } from "./apps.js";
import { checkExposure } from "./exposure.js";
import { checkFacadeExposure, facadeSchema } from "./facade.js";
import { corsSchema, listenSchema } from "./listen.js";
import { metricsSchema, resolveMetrics } from "./metrics.js";
import {
  auditSchema,
  cacheSchema,
  invalidateSchema,
  logSchema,
  shutdownSchema,
} from "./operations.js";
import { quotaSchema } from "./quota.js";
import { refreshSchema } from "./refresh.js";
import type { ConfigEnvironment } from "./secret.js";
import { securitySchema } from "./security.js";
import { storeSchema } from "./store.js";
import { tracingSchema } from "./tracing.js";
import { upstreamSchema } from "./upstream.js";
import { watchSchema } from "./watch.js";

/**
 * The whole config document. Built per parse: secrets are resolved while
 * parsing, through `environment`. Checks across sections run once every key
 * is valid, so they never read a refused value.
 */
export function configSchema(environment: ConfigEnvironment) {
  return section({
    listen: listenSchema(),
    upstream: upstreamSchema(),
    refresh: refreshSchema(),
    store: storeSchema(),
    cors: corsSchema(),
    log: logSchema(),
    shutdown: shutdownSchema(),
    metrics: metricsSchema(),
    alerts: alertsSchema(environment),
    security: securitySchema(environment),
    audit: auditSchema(),
    quota: quotaSchema(),
    invalidate: invalidateSchema(),
    cache: cacheSchema(),
    facade: facadeSchema(),
    watch: watchSchema(),
    tracing: tracingSchema(environment),
    apps: appsSchema(environment).prefault([]),
  })
    .transform((config) => ({
      ...config,
      metrics: resolveMetrics(config.metrics, config.security),
    }))
    .superRefine((config, ctx) => {
      for (const appId of Object.keys(config.quota.apps)) {
        if (!config.apps.some((a) => a.id === appId))
          ctx.addIssue({
            code: "custom",
            path: ["quota", "apps", appId],
            message: `no app with id '${appId}' is configured`,
          });
      }
      checkExposure(config, ctx);
      checkFacadeExposure(config, ctx);
    }, ONLY_WHEN_VALID);
}
