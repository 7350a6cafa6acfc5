import { describe, expect, it } from "vitest";
import { type AlertEvent, AlertManager, type Notifier } from "../../src/observability/alerts.js";
import { BrokerMetrics } from "../../src/observability/metrics.js";
import { LogNotifier } from "../../src/observability/notifiers/log-notifier.js";
import { MetricsNotifier } from "../../src/observability/notifiers/metrics-notifier.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock, flushMicrotasks } from "../helpers/fake-clock.js";
import { logSink } from "./helpers.js";

const KEY = { name: "upstream_config_error", app: "good", kind: "access_token" };
const INFO = {
  severity: "critical" as const,
  summary: "WeChat rejects the AppSecret for good (errcode 40125)",
  details: { errcode: 40125, failures: 1 },
};

/** Records every event it is handed. */
function recorder(): Notifier & { events: AlertEvent[] } {
  const events: AlertEvent[] = [];
  return {
    events,
    async notify(event) {
      events.push(event);
    },
  };
}

describe("AlertManager", () => {
  it("sends one firing and one resolved per episode and lists active alerts", async () => {
    const clock = new FakeClock();
    const rec = recorder();
    const alerts = new AlertManager({ notifiers: [rec], clock, logger: silentLogger() });
    const t0 = clock.now();
    for (let i = 1; i <= 5; i++) {
      await alerts.raise(KEY, { ...INFO, details: { errcode: 40125, failures: i } });
      await clock.advance(1000);
    }
    expect(rec.events).toEqual([{ ...KEY, ...INFO, state: "firing", at: t0 }]);
    expect(alerts.active()).toEqual([
      {
        ...KEY,
        ...INFO,
        details: { errcode: 40125, failures: 5 },
        since: t0,
        lastRaisedAt: t0 + 4000,
        raises: 5,
      },
    ]);

    await alerts.resolve(KEY, "WeChat accepts the AppSecret for good again");
    await alerts.resolve(KEY);
    expect(rec.events).toHaveLength(2);
    expect(rec.events[1]).toEqual({
      ...KEY,
      severity: "critical",
      summary: "WeChat accepts the AppSecret for good again",
      details: { errcode: 40125, failures: 5 },
      state: "resolved",
      at: t0 + 5000,
    });
    expect(alerts.active()).toEqual([]);

    // A new episode fires again; the default resolved summary names the alert's.
    await alerts.raise(KEY, INFO);
    await alerts.resolve(KEY);
    expect(rec.events.map((e) => e.state)).toEqual(["firing", "resolved", "firing", "resolved"]);
    expect(rec.events[3]?.summary).toBe(`Resolved: ${INFO.summary}`);
  });

  it("treats the same name for another app, kind or no app as separate alerts", async () => {
    const rec = recorder();
    const alerts = new AlertManager({
      notifiers: [rec],
      clock: new FakeClock(),
      logger: silentLogger(),
    });
    await alerts.raise(KEY, INFO);
    await alerts.raise({ ...KEY, app: "other" }, INFO);
    await alerts.raise({ ...KEY, kind: "jsapi_ticket" }, INFO);
    await alerts.raise({ name: KEY.name }, INFO);
    await alerts.resolve({ name: "never_raised" });
    expect(rec.events).toHaveLength(4);
    expect(rec.events[3]).not.toHaveProperty("app");
    expect(alerts.active().map((a) => [a.app, a.kind])).toEqual([
      ["good", "access_token"],
      ["other", "access_token"],
      ["good", "jsapi_ticket"],
      [undefined, undefined],
    ]);
  });

  it("runs notifiers concurrently; a failing one is logged and never reaches the caller", async () => {
    const sink = logSink();
    const rec = recorder();
    let release: () => void = () => {};
    let slowStarted = false;
    const slow: Notifier = {
      notify: () =>
        new Promise<void>((resolve) => {
          slowStarted = true;
          release = resolve;
        }),
    };
    class BrokenNotifier implements Notifier {
      async notify(): Promise<void> {
        throw new Error("receiver said no");
      }
    }
    const throwsAtOnce: Notifier = {
      notify: () => {
        throw new Error("synchronous failure");
      },
    };
    const alerts = new AlertManager({
      notifiers: [slow, new BrokenNotifier(), throwsAtOnce, rec],
      clock: new FakeClock(),
      logger: sink.logger,
    });
    const raised = alerts.raise(KEY, INFO);
    await flushMicrotasks();
    // The slow notifier has not finished, yet the others already ran.
    expect(slowStarted).toBe(true);
    expect(rec.events).toHaveLength(1);
    release();
    await expect(raised).resolves.toBeUndefined();
    const failures = sink.lines().filter((l) => l.msg === "alert notification failed");
    expect(failures.map((l) => [l.level, l.notifier, l.reason]).sort()).toEqual([
      ["error", "BrokenNotifier", "receiver said no"],
      ["error", "notifiers[2]", "synchronous failure"],
    ]);
    for (const line of failures) {
      expect(line).toMatchObject({ component: "alerts", alert: KEY.name, state: "firing" });
    }
  });

  it("stops waiting for a notifier after the timeout and aborts its signal", async () => {
    const clock = new FakeClock();
    const sink = logSink();
    let seen: AbortSignal | undefined;
    const hung: Notifier = {
      notify: (_event, signal) => {
        seen = signal;
        return new Promise<void>(() => {});
      },
    };
    const rec = recorder();
    const alerts = new AlertManager({
      notifiers: [hung, rec],
      clock,
      logger: sink.logger,
      timeoutMs: 5000,
    });
    let settled = false;
    const raised = alerts.raise(KEY, INFO).then(() => {
      settled = true;
    });
    await clock.advance(4999);
    expect(settled).toBe(false);
    expect(rec.events).toHaveLength(1);
    await clock.advance(1);
    await raised;
    expect(seen?.aborted).toBe(true);
    expect(sink.lines().find((l) => l.msg === "alert notification failed")?.reason).toBe(
      "timed out after 5000 ms",
    );
    expect(clock.pending).toBe(0);
  });

  it("delivers resolved after firing even when firing is slow", async () => {
    const clock = new FakeClock();
    const order: string[] = [];
    const slowFirst: Notifier = {
      async notify(event) {
        if (event.state === "firing") await new Promise((r) => setTimeout(r, 30));
        order.push(event.state);
      },
    };
    const alerts = new AlertManager({ notifiers: [slowFirst], clock, logger: silentLogger() });
    void alerts.raise(KEY, INFO);
    void alerts.resolve(KEY);
    await alerts.drain();
    expect(order).toEqual(["firing", "resolved"]);
  });

  it("counts alerts through the metrics option or a MetricsNotifier", async () => {
    for (const wiring of ["option", "notifier"] as const) {
      const metrics = new BrokerMetrics();
      const alerts = new AlertManager({
        notifiers: wiring === "notifier" ? [new MetricsNotifier(metrics)] : [],
        clock: new FakeClock(),
        logger: silentLogger(),
        ...(wiring === "option" ? { metrics } : {}),
      });
      await alerts.raise(KEY, INFO);
      await alerts.raise(KEY, INFO);
      await alerts.raise({ ...KEY, app: "other" }, INFO);
      await alerts.resolve(KEY);
      const text = await metrics.scrape();
      expect(text, wiring).toContain(
        'tokenbroker_alerts_total{alert="upstream_config_error",state="firing"} 2',
      );
      expect(text, wiring).toContain(
        'tokenbroker_alerts_total{alert="upstream_config_error",state="resolved"} 1',
      );
      expect(text, wiring).toContain('tokenbroker_alert_active{alert="upstream_config_error"} 1');
    }
  });
});

describe("LogNotifier", () => {
  it("logs firing critical as error, firing warning as warn, resolved as info", async () => {
    const clock = new FakeClock();
    const sink = logSink();
    const alerts = new AlertManager({
      notifiers: [new LogNotifier(sink.logger)],
      clock,
      logger: silentLogger(),
    });
    await alerts.raise(KEY, INFO);
    await alerts.raise(
      { name: "quota_low", app: "good" },
      {
        severity: "warning",
        summary: "good has used 90% of its token budget",
        details: { used: 1620 },
      },
    );
    await alerts.resolve(KEY, "fixed");
    const lines = sink.lines();
    expect(lines.map((l) => [l.level, l.name, l.state, l.msg])).toEqual([
      ["error", KEY.name, "firing", INFO.summary],
      ["warn", "quota_low", "firing", "good has used 90% of its token budget"],
      ["info", KEY.name, "resolved", "fixed"],
    ]);
    expect(lines[0]).toMatchObject({
      component: "alert-log",
      severity: "critical",
      app: "good",
      kind: "access_token",
      details: { errcode: 40125, failures: 1 },
      at: new Date(clock.now()).toISOString(),
    });
    expect(lines[1]).not.toHaveProperty("kind");
  });
});
