import type { EmailAlertConfig, WebhookConfig } from "../config/config.js";
import { type QuotaLedger, usageQueryOf } from "../quota/index.js";
import type { Clock } from "../shared/clock.js";
import {
  QuotaExhaustedError,
  UpstreamConfigError,
  UpstreamRejectedError,
} from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import type { AppRegistry } from "../token/app.js";
import type { RefreshEvents } from "../token/refresh-events.js";
import type { TokenManager } from "../token/token-manager.js";
import type { BreakerState } from "../upstream/upstream-breakers.js";
import { AlertManager } from "./alerts.js";
import { BrokerMetrics, type QuotaSample } from "./metrics.js";
import { EmailNotifier } from "./notifiers/email-notifier.js";
import { LogNotifier } from "./notifiers/log-notifier.js";
import { MetricsNotifier } from "./notifiers/metrics-notifier.js";
import { WebhookNotifier } from "./notifiers/webhook-notifier.js";

/** How often gauges that need I/O (quota usage) or a count (watchers) are sampled. */
const SAMPLE_EVERY_MS = 15_000;
/** A foreign-fetcher alert clears after this long without a new report. */
const FOREIGN_QUIET_MS = 2 * 3_600_000;

export interface BrokerObservability {
  readonly metrics: BrokerMetrics;
  readonly alerts: AlertManager;
  /** Feeds metrics and alert rules from the token core. */
  readonly events: RefreshEvents;
  onBreakerState(app: string, endpoint: string, state: BreakerState): void;
  observeUpstream(app: string, endpoint: string, outcome: string, seconds: number): void;
  /** Starts sampling the manager and the ledger for gauges. */
  sample(manager: TokenManager, ledger: QuotaLedger, apps: AppRegistry): void;
  close(): Promise<void>;
}

/**
 * Metrics and alerts for the broker. Alert rules: WeChat rejecting an app's
 * configuration (critical, until a refresh succeeds), its quota used up
 * (critical, likewise), an errcode the broker does not know (critical,
 * likewise), a WeChat circuit open (warning, until it closes), and
 * another party fetching the app's tokens (critical, until two hours pass
 * without a new report). Each fires once when it starts and once when it clears.
 */
export function createObservability(o: {
  clock: Clock;
  logger: Logger;
  webhooks: readonly WebhookConfig[];
  email?: EmailAlertConfig;
  fetch?: typeof fetch;
}): BrokerObservability {
  const metrics = new BrokerMetrics();
  const log = o.logger.child({ component: "alerts" });
  const email = o.email ? emailNotifier(o.email, log) : undefined;
  const alerts = new AlertManager({
    clock: o.clock,
    logger: log,
    notifiers: [
      new LogNotifier(log),
      new MetricsNotifier(metrics),
      ...o.webhooks.map(
        (w) =>
          new WebhookNotifier({
            url: w.url.reveal(),
            format: w.format,
            timeoutMs: 5000,
            clock: o.clock,
            logger: log,
            ...(o.fetch ? { fetch: o.fetch } : {}),
          }),
      ),
      ...(email ? [email] : []),
    ],
  });
  const lastForeign = new Map<string, number>();
  let cancelSampling: (() => void) | undefined;

  const events: RefreshEvents = {
    refreshed(key, _credential, reason, degraded) {
      metrics.refreshOutcome(key.appId, key.kind, degraded ? "degraded" : "refreshed");
      void alerts.resolve({ name: "wechat_config_error", app: key.appId });
      void alerts.resolve({ name: "wechat_quota_exhausted", app: key.appId });
      void alerts.resolve({ name: "wechat_unknown_errcode", app: key.appId });
      const foreignAt = lastForeign.get(key.appId);
      if (
        reason === "scheduled" &&
        foreignAt !== undefined &&
        o.clock.now() - foreignAt > FOREIGN_QUIET_MS
      ) {
        lastForeign.delete(key.appId);
        void alerts.resolve({ name: "foreign_token_fetcher", app: key.appId });
      }
    },
    lockWaited(_key, seconds, gotResult) {
      metrics.lockWait(seconds, gotResult);
    },
    unchanged(key) {
      metrics.refreshOutcome(key.appId, key.kind, "unchanged");
    },
    failed(key, error) {
      metrics.refreshOutcome(key.appId, key.kind, "failed");
      if (error instanceof UpstreamConfigError) {
        void alerts.raise(
          { name: "wechat_config_error", app: key.appId },
          {
            severity: "critical",
            summary: error.message,
            details: { errcode: error.errcode, kind: key.kind },
          },
        );
      } else if (error instanceof UpstreamRejectedError) {
        void alerts.raise(
          { name: "wechat_unknown_errcode", app: key.appId },
          {
            severity: "critical",
            summary: `WeChat answered errcode ${error.errcode}, unknown to the broker: ${error.message}`,
            details: { errcode: error.errcode, endpoint: error.endpoint, kind: key.kind },
          },
        );
      } else if (error instanceof QuotaExhaustedError) {
        void alerts.raise(
          { name: "wechat_quota_exhausted", app: key.appId },
          {
            severity: "critical",
            summary: error.message,
            details: { errcode: error.errcode, kind: key.kind },
          },
        );
      }
    },
    foreignRefresh(key, evidence) {
      lastForeign.set(key.appId, o.clock.now());
      void alerts.raise(
        { name: "foreign_token_fetcher", app: key.appId },
        {
          severity: "critical",
          summary:
            `WeChat rejected app '${key.appId}''s current access token ${evidence.remainingSeconds} s before it ` +
            `was due to expire${evidence.reportedBy === undefined ? "" : ` (reported by client '${evidence.reportedBy}')`}: ` +
            "something else is fetching tokens for this appid (an old deployment, a tool?). " +
            "Find it and point it at the broker, or switch the app to tokenMode: stable. " +
            "If WeChat did not reject it, the reporting client is misusing InvalidateToken.",
          details: { ...evidence },
        },
      );
    },
  };

  return {
    metrics,
    alerts,
    events,
    onBreakerState(app, endpoint, state) {
      metrics.breakerTransition(app, endpoint, state);
      if (state === "open") {
        void alerts.raise(
          { name: "wechat_circuit_open", app, kind: endpoint },
          {
            severity: "warning",
            summary: `calls to WeChat ${endpoint} for app '${app}' keep failing; pausing them (circuit open)`,
            details: { endpoint },
          },
        );
      } else if (state === "closed") {
        void alerts.resolve({ name: "wechat_circuit_open", app, kind: endpoint });
      }
    },
    observeUpstream(_app, endpoint, outcome, seconds) {
      metrics.upstreamCall(endpoint, outcome, seconds);
    },
    sample(manager, ledger, apps) {
      let quota: QuotaSample[] = [];
      metrics.setQuotaSource(() => quota);
      metrics.setCredentialSource(
        () =>
          manager.held().map(({ key, credential }) => ({
            app: key.appId,
            kind: key.kind,
            expiresAt: credential.expiresAt,
            fetchedAt: credential.fetchedAt,
            version: credential.version,
          })),
        o.clock,
      );
      const tick = async () => {
        metrics.watchers(manager.watcherCount);
        metrics.userTokensHeld(manager.userTokensHeld);
        const next: QuotaSample[] = [];
        for (const app of apps.all()) {
          const usage = await ledger
            .usage(app.id, o.clock.now(), usageQueryOf(app))
            .catch(() => []);
          for (const u of usage) {
            next.push({
              app: app.id,
              endpoint: u.endpoint,
              used: u.used,
              budget: u.budget,
              limit: wechatLimit(u.endpoint, app.type, u.budget),
            });
          }
        }
        quota = next;
        cancelSampling = o.clock.schedule(() => void tick(), SAMPLE_EVERY_MS);
      };
      void tick();
    },
    async close() {
      cancelSampling?.();
      await alerts.drain();
      email?.close();
    },
  };
}

/** WeChat's own daily limit (facts §1-§3); getticket's is unpublished, so its budget stands in. */
function wechatLimit(endpoint: string, appType: string, budget: number): number {
  switch (endpoint) {
    case "/cgi-bin/token":
      return appType === "mini_program" ? 10_000 : 2_000;
    case "/cgi-bin/stable_token":
      return 500_000;
    case "force_refresh":
      return 20;
    default:
      return budget;
  }
}

function emailNotifier(c: EmailAlertConfig, logger: Logger): EmailNotifier {
  const { caFile, ...smtp } = c.smtp;
  return new EmailNotifier({
    smtp: { ...smtp, ...(caFile === undefined ? {} : { ca: caFile }) },
    from: c.from,
    to: c.to,
    subjectPrefix: c.subjectPrefix,
    logger,
  });
}
