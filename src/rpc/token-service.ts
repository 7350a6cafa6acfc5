import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { InvalidateOutcome, type TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { peerKey } from "../server/index.js";
import type { Clock } from "../shared/clock.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import { isUnexpected, toConnectError } from "../shared/to-connect-error.js";
import type { AppliedRollout } from "../token/applied-rollout.js";
import type { InvalidateOutcome as DomainOutcome, TokenManager } from "../token/token-manager.js";
import { callerOf, mayReadTokens } from "./caller.js";
import { toTokenMessage } from "./token-message.js";
import { TokenResponses } from "./token-responses.js";
import {
  validateCredentialRequest,
  validateInstance,
  validateRejectedValue,
  validateReportErrcode,
  validateVersion,
} from "./validate.js";

export interface TokenServiceDeps {
  manager: TokenManager;
  clock: Clock;
  logger: Logger;
  /** Every InvalidateToken is an intervention worth an audit line. */
  audit?: Logger;
  /** WatchToken streams end after about this long (absent: never), ± `maxStreamAgeJitter` of it. */
  maxStreamAgeMs?: number;
  maxStreamAgeJitter?: number;
  /** Randomness in [0, 1) for the stream age jitter. */
  random?: () => number;
  /** Where AckToken's acknowledgements go; without it they are accepted and not counted. */
  rollout?: AppliedRollout;
}

const OUTCOME: Readonly<Record<DomainOutcome, InvalidateOutcome>> = {
  refreshed: InvalidateOutcome.REFRESHED,
  already_replaced: InvalidateOutcome.ALREADY_REPLACED,
  joined_refresh: InvalidateOutcome.JOINED_REFRESH,
  confirmed_current: InvalidateOutcome.CONFIRMED_CURRENT,
  rate_limited: InvalidateOutcome.RATE_LIMITED,
};

/**
 * The TokenService handlers, written once and served by both listeners.
 * Each validates its input, makes one call into the TokenManager, and maps
 * the result; every failure goes through toConnectError.
 */
export function createTokenService(deps: TokenServiceDeps): ServiceImpl<typeof TokenService> {
  const { manager, clock } = deps;
  const responses = new TokenResponses();
  const fail = (err: unknown, method: string) => {
    // Domain errors and store outages are expected outcomes (the outage is
    // logged where it is met); anything else is a bug worth a log line.
    if (isUnexpected(err)) deps.logger.error({ err, method }, "unexpected error in handler");
    return toConnectError(err);
  };

  /**
   * Aborts when the call's signal does, or with UNAVAILABLE once the stream
   * reaches its (jittered) maximum age: clients reconnect, through their load
   * balancer, so streams spread over replicas added since they opened.
   */
  const streamAgeSignal = (call: AbortSignal): { signal: AbortSignal; cancel: () => void } => {
    const { maxStreamAgeMs } = deps;
    if (maxStreamAgeMs === undefined) return { signal: call, cancel: () => {} };
    const jitter = deps.maxStreamAgeJitter ?? 0;
    // Whole ms: a fake clock takes the timer's time as its own, and times end up in Timestamps.
    const ageMs = Math.round(
      maxStreamAgeMs * (1 - jitter + 2 * jitter * (deps.random ?? Math.random)()),
    );
    const aged = new AbortController();
    const onCall = () => aged.abort(call.reason);
    if (call.aborted) onCall();
    else call.addEventListener("abort", onCall, { once: true });
    const cancelTimer = clock.schedule(() => aged.abort(maxAgeReached(maxStreamAgeMs)), ageMs);
    return {
      signal: aged.signal,
      cancel: () => {
        cancelTimer();
        call.removeEventListener("abort", onCall);
      },
    };
  };

  return {
    async getToken(req, ctx) {
      try {
        const key = validateCredentialRequest(req);
        // A cached token needs no signal: not touching ctx.signal spares the
        // gRPC adapter an AbortController per call.
        const credential =
          manager.cached(key.appId, key.kind, key.subject) ??
          (await manager.get(key.appId, key.kind, ctx.signal, key.subject));
        return responses.getToken(
          key,
          credential,
          clock.now(),
          manager.isOverdue(key.appId, key.kind, key.subject),
          manager.reportedExpiresAt(key.appId, key.kind, credential, key.subject),
          manager.refreshAfter(key.appId, key.kind, credential, key.subject),
        );
      } catch (err) {
        throw fail(err, "GetToken");
      }
    },

    async invalidateToken(req, ctx) {
      try {
        const key = validateCredentialRequest(req);
        const rejected = validateRejectedValue(req.rejectedValue);
        const errcode = validateReportErrcode(
          req.errcode,
          manager.staleErrcodes(key.appId, key.kind, key.subject),
        );
        const client = callerOf(ctx);
        // A client that may only report gets no value, and its report fetches
        // nothing the broker does not hold already.
        const canRead = mayReadTokens(ctx);
        const result = await manager.invalidate(
          key.appId,
          key.kind,
          rejected,
          errcode,
          ctx.signal,
          {
            reporter: client,
            coldFetch: canRead,
            ...(key.subject === undefined ? {} : { subject: key.subject }),
          },
        );
        deps.audit?.info(
          {
            event: "invalidate",
            client,
            address: ctx.values.get(peerKey)?.address,
            app: key.appId,
            kind: key.kind,
            subject: key.subject,
            errcode,
            rejected: fingerprint(rejected),
            outcome: result.outcome,
          },
          "InvalidateToken",
        );
        const token = toTokenMessage(
          key,
          result.credential,
          clock.now(),
          false,
          manager.reportedExpiresAt(key.appId, key.kind, result.credential, key.subject),
          manager.refreshAfter(key.appId, key.kind, result.credential, key.subject),
        );
        if (!canRead) token.value = "";
        return {
          token,
          refreshed: result.outcome === "refreshed",
          outcome: OUTCOME[result.outcome],
        };
      } catch (err) {
        throw fail(err, "InvalidateToken");
      }
    },

    async ackToken(req, ctx) {
      try {
        const key = validateCredentialRequest(req);
        const instance = validateInstance(req.instance);
        const version = validateVersion(req.version);
        // Resolving the key refuses an unknown app, kind or subject like GetToken does.
        manager.cached(key.appId, key.kind, key.subject);
        const held = manager.peek(key.appId, key.kind, key.subject);
        const currentVersion = BigInt(held?.version ?? 0);
        // Users' credentials are not counted: one entry per user and instance
        // would grow with the users, and their holders are few.
        if (!deps.rollout || key.subject !== undefined) {
          return { renewWithinSeconds: 0, currentVersion };
        }
        await deps.rollout.ack(key, callerOf(ctx), instance, version);
        return {
          renewWithinSeconds: Math.max(1, Math.round(deps.rollout.renewMs / 1000)),
          currentVersion,
        };
      } catch (err) {
        throw fail(err, "AckToken");
      }
    },

    async *watchToken(req, ctx) {
      const aged = streamAgeSignal(ctx.signal);
      try {
        const key = validateCredentialRequest(req);
        let first = true;
        for await (const event of manager.watch(key.appId, key.kind, aged.signal, key.subject)) {
          yield responses.watchToken(
            key,
            event.credential,
            clock.now(),
            !first,
            manager.reportedExpiresAt(key.appId, key.kind, event.credential, key.subject),
            manager.refreshAfter(key.appId, key.kind, event.credential, key.subject),
          );
          first = false;
        }
      } catch (err) {
        // The transport ends streams on shutdown or client cancel by aborting
        // the signal; let its reason through so it picks the status.
        if (ctx.signal.aborted && err === ctx.signal.reason) throw err;
        if (aged.signal.aborted && err === aged.signal.reason) throw err;
        throw fail(err, "WatchToken");
      } finally {
        aged.cancel();
      }
    },
  };
}

/** How a stream at its maximum age ends; clients reconnect on UNAVAILABLE. */
function maxAgeReached(maxStreamAgeMs: number): ConnectError {
  return new ConnectError(
    `the stream reached its maximum age (about ${Math.round(maxStreamAgeMs / 1000)} s; watch.maxStreamAgeSeconds): ` +
      "reconnect to keep watching, the first message is the current credential",
    Code.Unavailable,
  );
}
