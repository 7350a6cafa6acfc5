import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type AdminService,
  AlertStatusSchema,
  AppStatusSchema,
  BreakerStatusSchema,
  CredentialStatusSchema,
  QuotaStatusSchema,
} from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { UpstreamError } from "../core/upstream-error.js";
import type { WechatClient } from "../credentials/wechat/wechat-client.js";
import type { ActiveAlert } from "../observability/alerts.js";
import { CLEAR_QUOTA_GAP_MS, type QuotaLedger, usageQueryOf } from "../quota/index.js";
import { auditedText } from "../security/audit-values.js";
import { peerKey } from "../server/index.js";
import type { Clock } from "../shared/clock.js";
import {
  BrokerError,
  FailedPreconditionError,
  InvalidArgumentError,
  QuotaExhaustedError,
} from "../shared/errors.js";
import { fingerprint } from "../shared/fingerprint.js";
import type { Logger } from "../shared/logger.js";
import { toConnectError } from "../shared/to-connect-error.js";
import { type AppRegistry, kindsOfType } from "../token/app.js";
import type { AppliedRollout } from "../token/applied-rollout.js";
import { toBrokerError } from "../token/to-broker-error.js";
import type { TokenManager } from "../token/token-manager.js";
import type { UpstreamBreakers } from "../upstream/upstream-breakers.js";
import type { UpstreamGuard } from "../upstream/upstream-guard.js";
import { callerOf } from "./caller.js";
import { kindToProto } from "./kinds.js";
import { toTokenMessage } from "./token-message.js";
import { validateCredentialRequest } from "./validate.js";

export interface AdminServiceDeps {
  manager: TokenManager;
  apps: AppRegistry;
  ledger: QuotaLedger;
  breakers: UpstreamBreakers;
  /** Quota clears reach WeChat through it, like every other call: its breaker and metrics. */
  guard: UpstreamGuard;
  alerts: { active(): ActiveAlert[] };
  client: WechatClient;
  clock: Clock;
  /** Where audit records go: one line per intervention, who, what, why, outcome. */
  audit: Logger;
  /** Which versions clients use (AckToken); the counts are 0 without it. */
  rollout?: AppliedRollout;
}

/** Operator RPCs: status, and WeChat's two interventions, each audited. */
export function createAdminService(d: AdminServiceDeps): ServiceImpl<typeof AdminService> {
  const audited = async <T>(
    action: string,
    appId: string,
    reason: string,
    ctx: HandlerContext,
    run: () => Promise<T>,
  ): Promise<T> => {
    const peer = ctx.values.get(peerKey);
    const who = {
      event: action,
      client: callerOf(ctx),
      app: appId,
      // A token pasted as the reason must not land in the audit log whole.
      reason: auditedText(reason),
      address: peer ? `${peer.address}:${peer.port ?? ""}` : "unknown",
    };
    try {
      const result = await run();
      d.audit.info({ ...who, outcome: "ok" }, `admin ${action}`);
      return result;
    } catch (err) {
      const mapped = toConnectError(err);
      d.audit.warn(
        { ...who, outcome: "refused", status: mapped.code, detail: mapped.rawMessage },
        `admin ${action}`,
      );
      throw mapped;
    }
  };

  const impl: ServiceImpl<typeof AdminService> = {
    async getStatus(req) {
      const now = d.clock.now();
      const wanted = (app: string) => req.appId === "" || req.appId === app;
      const credentials = [];
      for (const { key, credential: c } of d.manager.held()) {
        if (!wanted(key.appId)) continue;
        const next = d.manager.nextRefreshAt(key.appId, key.kind);
        // Status still answers while the store is down; the counts are then unknown (0).
        const clients = await d.rollout?.summary(key, c).catch(() => undefined);
        credentials.push(
          create(CredentialStatusSchema, {
            appId: key.appId,
            kind: kindToProto(key.kind),
            version: BigInt(c.version),
            fetchedAt: timestampFromMs(c.fetchedAt),
            expiresAt: timestampFromMs(c.expiresAt),
            ...(next === undefined ? {} : { nextRefreshAt: timestampFromMs(next) }),
            refreshOverdue: d.manager.isOverdue(key.appId, key.kind),
            lastError: d.manager.lastError(key.appId, key.kind) ?? "",
            fingerprint: fingerprint(c.value),
            clientsCurrent: clients?.current ?? 0,
            clientsSuperseded: clients?.superseded ?? 0,
            ...(clients?.supersededValidUntil === undefined
              ? {}
              : { supersededValidUntil: timestampFromMs(clients.supersededValidUntil) }),
            supersededVersion: BigInt(clients?.supersededVersion ?? 0),
          }),
        );
      }
      const breakers = d.breakers
        .list()
        .filter((b) => wanted(b.app))
        .map((b) =>
          create(BreakerStatusSchema, {
            appId: b.app,
            endpoint: b.endpoint,
            state: b.state,
            ...(b.openedAt === undefined ? {} : { openedAt: timestampFromMs(b.openedAt) }),
          }),
        );
      const quotas = [];
      for (const app of d.apps.all().filter((a) => wanted(a.id))) {
        for (const u of await d.ledger.usage(app.id, now, usageQueryOf(app))) {
          quotas.push(
            create(QuotaStatusSchema, {
              appId: app.id,
              endpoint: u.endpoint,
              used: BigInt(u.used),
              budget: Number.isFinite(u.budget) ? BigInt(u.budget) : -1n,
              ...(u.blockedUntil === undefined
                ? {}
                : { blockedUntil: timestampFromMs(u.blockedUntil) }),
              window: u.window ?? "china_day",
              ...(u.group
                ? {
                    groupId: u.group.id,
                    groupUsed: BigInt(u.group.used),
                    groupBudget: Number.isFinite(u.group.budget) ? BigInt(u.group.budget) : -1n,
                  }
                : {}),
            }),
          );
        }
      }
      const alerts = d.alerts
        .active()
        .filter((a) => a.app === undefined || wanted(a.app))
        .map((a) =>
          create(AlertStatusSchema, {
            name: a.name,
            appId: a.app ?? "",
            severity: a.severity,
            summary: a.summary,
            since: timestampFromMs(a.since),
          }),
        );
      // Every app, held credentials or not: a wrong secret leaves an app with none.
      const apps = d.apps
        .all()
        .filter((a) => wanted(a.id))
        .map((a) =>
          create(AppStatusSchema, {
            appId: a.id,
            type: a.type,
            kinds: (a.kinds ?? kindsOfType(a.type, d.apps.kinds)).map(kindToProto),
          }),
        );
      return { credentials, breakers, quotas, alerts, apps };
    },

    async forceRefresh(req, ctx) {
      const { appId } = validateCredentialRequest({
        appId: req.appId,
        kind: TokenKind.ACCESS_TOKEN,
      });
      const reason = requireReason(req.reason);
      return audited("force_refresh", appId, reason, ctx, async () => {
        d.apps.resolve(appId, "access_token");
        // Refused before the ledger counts it: a force that cannot happen uses none of the 20.
        const refusal = d.manager.forceRefusal(appId);
        if (refusal !== undefined) throw new FailedPreconditionError(refusal);
        const decision = await d.ledger.take(appId, "force_refresh", d.clock.now());
        if (!decision.allowed) {
          const when = decision.retryAt ? new Date(decision.retryAt).toISOString() : "later";
          throw new QuotaExhaustedError(
            decision.reason === "force_gap"
              ? `force refresh of app '${appId}' refused: WeChat ignores force refreshes less than 30 s apart; retry at ${when}`
              : `force refresh of app '${appId}' refused: WeChat allows 20 a day and they are used; retry at ${when}`,
            45009,
          );
        }
        const credential = await d.manager.forceRefresh(appId, ctx.signal);
        return {
          token: toTokenMessage({ appId, kind: "access_token" }, credential, d.clock.now()),
        };
      });
    },

    async clearQuota(req, ctx) {
      const { appId } = validateCredentialRequest({
        appId: req.appId,
        kind: TokenKind.ACCESS_TOKEN,
      });
      const reason = requireReason(req.reason);
      return audited("clear_quota", appId, reason, ctx, async () => {
        const app = d.apps.resolve(appId, "access_token");
        // clear_quota/v2 takes the app's secret: only accounts that have it may call it
        // (a WeCom app's secret must never reach WeChat's official-account host).
        const account = d.apps.kinds.accountType(app.type);
        if (!account?.endpoints.some((e) => e.name === "clear_quota"))
          throw new FailedPreconditionError(
            `app '${appId}' is a ${account?.label ?? app.type}, which has no quota clear: ` +
              "WeChat's clear_quota/v2 is for official accounts and mini programs. Wait for the " +
              "blocked window to end (see the errcode's advice); nothing was sent to WeChat",
          );
        // WeChat allows 10 clears a month: one mistaken loop must not use them all.
        const decision = await d.ledger.take(appId, "clear_quota", d.clock.now());
        if (!decision.allowed) {
          const when = decision.retryAt ? new Date(decision.retryAt).toISOString() : "later";
          throw new QuotaExhaustedError(
            decision.reason === "clear_gap"
              ? `quota clear of app '${appId}' refused: the last clear was less than ${CLEAR_QUOTA_GAP_MS / 60_000} minutes ago ` +
                  `and zeroed every counter; each clear uses one of WeChat's 10 a month. Retry at ${when} if calls are still refused`
              : `quota clear of app '${appId}' refused: this broker allows ${decision.budget} clears a day ` +
                  `(quota.budgets.clear_quota) and they are used; WeChat allows 10 a month. Retry at ${when}`,
            0, // the broker's own limit, not a WeChat errcode
          );
        }
        try {
          await d.guard.call(
            appId,
            "/cgi-bin/clear_quota/v2",
            () =>
              d.client.clearQuota({ appid: app.appid, secret: app.secret.reveal() }, ctx.signal),
            // Metered above (with its gap); an operator retries deliberately, not this call.
            { retries: false, signal: ctx.signal },
          );
        } catch (err) {
          if (err instanceof UpstreamError && err.errcode === 48006) {
            throw new QuotaExhaustedError(
              `WeChat refused to clear the quota of app '${appId}': its 10 clears this month are used (errcode 48006)`,
              48006,
            );
          }
          throw err instanceof BrokerError || err instanceof ConnectError
            ? err
            : toBrokerError(err, { appId, kind: "access_token" });
        }
        await d.ledger.reset(appId, d.clock.now());
        return {};
      });
    },
  };
  // Every failure, validation included, leaves through the one status mapping.
  return {
    getStatus: (req, ctx) => Promise.resolve(impl.getStatus(req, ctx)).catch(rethrow),
    forceRefresh: (req, ctx) => Promise.resolve(impl.forceRefresh(req, ctx)).catch(rethrow),
    clearQuota: (req, ctx) => Promise.resolve(impl.clearQuota(req, ctx)).catch(rethrow),
  };
}

function rethrow(err: unknown): never {
  throw toConnectError(err);
}

function requireReason(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed === "" || trimmed.length > 200) {
    throw new InvalidArgumentError(
      "reason is required (1-200 characters): it is written to the audit log",
    );
  }
  return trimmed;
}
