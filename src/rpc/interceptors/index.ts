import type { Interceptor } from "@connectrpc/connect";
import { compilePolicy, type SecurityPolicy } from "../../security/policy.js";
import { RefusalLog } from "../../security/refusal-log.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import { auditAdminCalls } from "./audit.js";
import { authenticate } from "./authenticate.js";
import { authorize } from "./authorize.js";
import { limits } from "./limits.js";
import { metrics, type RpcObserver } from "./metrics.js";
import { tracing } from "./tracing.js";

export type { RpcObserver } from "./metrics.js";
export type { SecurityEvent } from "./scene.js";

export interface RpcInterceptorOptions {
  policy: SecurityPolicy;
  /** Time for the rate limits and the durations. */
  clock: Clock;
  /** One line per admin call and per kind of refusal; never a key or a token. */
  audit: Logger;
  /**
   * Where refusals go, with repeats counted per window; by default one of
   * its own, writing to `audit` on `clock`. The broker passes the one its
   * listeners also write to (one audit stream, one count per kind).
   */
  refusals?: RefusalLog;
  /** Each call's code and duration (BrokerMetrics.rpcHandled); not measured without it. */
  observe?: RpcObserver;
  /** A span per call (OpenTelemetry); only when tracing is on. */
  tracing?: boolean;
}

/**
 * The broker's cross-cutting RPC concerns as one chain, which both listeners
 * run around every call of the services registered with it
 * (`registration(service, impl, interceptors)`), in this order:
 *
 * 0. tracing (when on): a span per call, continuing the caller's trace;
 * 1. metrics: every call's code and duration, refusals included;
 * 2. authenticate: the address allowlist, then the API key or client
 *    certificate; puts the client into the context (`clientKey`,
 *    `permissionsKey`);
 * 3. authorize: the method's permission, the request's app and kind;
 * 4. limits: the client's rates and stream slots;
 * 5. audit: one line per admin call with its outcome.
 *
 * One chain is shared by every service it guards (one set of buckets and
 * stream slots per client). The policy is compiled once, here; it was
 * validated where it was read (the config schema).
 */
export function rpcInterceptors(o: RpcInterceptorOptions): Interceptor[] {
  const policy = compilePolicy(o.policy);
  const refusals = o.refusals ?? new RefusalLog({ audit: o.audit, clock: o.clock });
  return [
    ...(o.tracing ? [tracing()] : []),
    ...(o.observe ? [metrics(o.observe, o.clock)] : []),
    authenticate(policy, refusals),
    authorize(refusals),
    limits(o.clock, refusals),
    auditAdminCalls(o.audit),
  ];
}
