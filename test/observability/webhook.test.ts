import { afterEach, describe, expect, it } from "vitest";
import { AlertManager } from "../../src/observability/alerts.js";
import { LogNotifier } from "../../src/observability/notifiers/log-notifier.js";
import {
  WebhookNotifier,
  type WebhookNotifierOptions,
} from "../../src/observability/notifiers/webhook-notifier.js";
import { fingerprint } from "../../src/shared/fingerprint.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { logSink, type Reply, startReceiver } from "./helpers.js";

const SECRET = "good-secret-1f2e3d4c5b6a";
const TOKEN = `93_${"aB3xZ9".repeat(24)}`;
const ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa";
const KEY = { name: "upstream_config_error", app: "good", kind: "access_token" };
const INFO = {
  severity: "critical" as const,
  summary: "WeChat rejects the AppSecret for good (errcode 40125)",
  details: {
    errcode: 40125,
    failures: 3,
    secretFingerprint: fingerprint(SECRET),
    tokenFingerprint: fingerprint(TOKEN),
  },
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(
  options: { format: "generic" | "wecom"; withKey?: boolean } & Partial<WebhookNotifierOptions>,
  reply?: (n: number) => Reply,
) {
  const receiver = await startReceiver(reply);
  cleanups.push(receiver.close);
  const clock = new FakeClock();
  const sink = logSink();
  const url = options.withKey
    ? `${receiver.url}cgi-bin/webhook/send?key=${ROBOT_KEY}`
    : `${receiver.url}hooks/alerts`;
  const webhook = new WebhookNotifier({
    timeoutMs: 1000,
    backoffMs: 10,
    logger: sink.logger,
    ...options,
    url,
  });
  const alerts = new AlertManager({
    notifiers: [webhook, new LogNotifier(sink.logger)],
    clock,
    logger: sink.logger,
  });
  /** Asserts nothing secret reached the logs or the receiver's bodies. */
  const assertNoLeaks = () => {
    const everything = sink.text() + receiver.requests.map((r) => r.body).join("\n");
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(TOKEN);
    expect(sink.text()).not.toContain(ROBOT_KEY);
    expect(sink.text()).not.toContain("key=");
  };
  return { receiver, clock, sink, webhook, alerts, assertNoLeaks };
}

describe("WebhookNotifier behind an AlertManager, against a real receiver", () => {
  it("posts one generic firing for five raises and one resolved, as JSON of a fixed shape", async () => {
    const { receiver, clock, alerts, assertNoLeaks } = await setup({ format: "generic" });
    const t0 = clock.now();
    for (let i = 0; i < 5; i++) {
      await alerts.raise(KEY, INFO);
      await clock.advance(60_000);
    }
    expect(receiver.requests).toHaveLength(1);
    const [first] = receiver.requests;
    expect(first?.method).toBe("POST");
    expect(first?.url).toBe("/hooks/alerts");
    expect(first?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(first?.body ?? "")).toEqual({
      alert: "upstream_config_error",
      state: "firing",
      severity: "critical",
      app: "good",
      kind: "access_token",
      summary: INFO.summary,
      details: INFO.details,
      at: new Date(t0).toISOString(),
      source: "wechat-token-broker",
    });

    await alerts.resolve(KEY, "WeChat accepts the AppSecret for good again");
    expect(receiver.requests).toHaveLength(2);
    expect(JSON.parse(receiver.requests[1]?.body ?? "")).toEqual({
      alert: "upstream_config_error",
      state: "resolved",
      severity: "critical",
      app: "good",
      kind: "access_token",
      summary: "WeChat accepts the AppSecret for good again",
      details: INFO.details,
      at: new Date(t0 + 300_000).toISOString(),
      source: "wechat-token-broker",
    });
    await alerts.resolve(KEY);
    expect(receiver.requests).toHaveLength(2);

    // An alert not about one app carries explicit nulls.
    await alerts.raise({ name: "store_unavailable" }, { ...INFO, details: {} });
    expect(JSON.parse(receiver.requests[2]?.body ?? "")).toMatchObject({ app: null, kind: null });
    assertNoLeaks();
  });

  it("posts the WeCom robot markdown body", async () => {
    const { receiver, clock, alerts, assertNoLeaks } = await setup(
      { format: "wecom", withKey: true },
      () => ({ status: 200, body: '{"errcode":0,"errmsg":"ok"}' }),
    );
    const at = new Date(clock.now()).toISOString();
    await alerts.raise(KEY, INFO);
    await alerts.raise(KEY, INFO);
    await alerts.resolve(KEY, "WeChat accepts the AppSecret for good again");
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[0]?.url).toBe(`/cgi-bin/webhook/send?key=${ROBOT_KEY}`);
    expect(JSON.parse(receiver.requests[0]?.body ?? "")).toEqual({
      msgtype: "markdown",
      markdown: {
        content: [
          '**<font color="warning">FIRING</font> upstream_config_error** (critical)',
          "WeChat rejects the AppSecret for good (errcode 40125)",
          "> app: good, kind: access_token",
          `> at: ${at}`,
          "- errcode: 40125",
          "- failures: 3",
          `- secretFingerprint: ${fingerprint(SECRET)}`,
          `- tokenFingerprint: ${fingerprint(TOKEN)}`,
        ].join("\n"),
      },
    });
    const resolved = JSON.parse(receiver.requests[1]?.body ?? "") as {
      markdown: { content: string };
    };
    expect(resolved.markdown.content.split("\n").slice(0, 2)).toEqual([
      '**<font color="info">RESOLVED</font> upstream_config_error** (critical)',
      "WeChat accepts the AppSecret for good again",
    ]);
    assertNoLeaks();
  });

  it("retries a 500 twice, then logs only the origin; the caller is unaffected", async () => {
    const { receiver, sink, alerts, assertNoLeaks } = await setup(
      { format: "wecom", withKey: true },
      () => ({ status: 500, body: "boom" }),
    );
    await expect(alerts.raise(KEY, INFO)).resolves.toBeUndefined();
    expect(receiver.requests).toHaveLength(3);
    const lines = sink.lines();
    expect(
      lines
        .filter((l) => l.msg === "alert webhook attempt failed")
        .map((l) => [l.attempt, l.reason]),
    ).toEqual([
      [1, "HTTP 500"],
      [2, "HTTP 500"],
      [3, "HTTP 500"],
    ]);
    const failure = lines.find((l) => l.msg === "alert notification failed");
    expect(failure).toMatchObject({
      level: "error",
      notifier: "WebhookNotifier",
      reason: `webhook ${receiver.origin} failed after 3 attempt(s): HTTP 500`,
    });
    // The LogNotifier still reported the alert.
    expect(lines.some((l) => l.level === "error" && l.msg === INFO.summary)).toBe(true);
    assertNoLeaks();
  });

  it("does not retry a 400 or a WeCom config errcode, but retries WeCom's rate limit", async () => {
    const bad = await setup({ format: "generic" }, () => ({ status: 400 }));
    await bad.alerts.raise(KEY, INFO);
    expect(bad.receiver.requests).toHaveLength(1);
    expect(bad.sink.lines().find((l) => l.msg === "alert notification failed")?.reason).toMatch(
      /failed after 1 attempt\(s\): HTTP 400$/,
    );

    const wrongKey = await setup({ format: "wecom", withKey: true }, () => ({
      status: 200,
      body: '{"errcode":93000,"errmsg":"invalid webhook url"}',
    }));
    await wrongKey.alerts.raise(KEY, INFO);
    expect(wrongKey.receiver.requests).toHaveLength(1);
    expect(
      wrongKey.sink.lines().find((l) => l.msg === "alert notification failed")?.reason,
    ).toMatch(/failed after 1 attempt\(s\): wecom errcode 93000$/);
    wrongKey.assertNoLeaks();

    const limited = await setup({ format: "wecom", withKey: true }, (n) => ({
      status: 200,
      body: n === 0 ? '{"errcode":45009,"errmsg":"api freq out of limit"}' : '{"errcode":0}',
    }));
    await limited.alerts.raise(KEY, INFO);
    expect(limited.receiver.requests).toHaveLength(2);
    expect(limited.sink.lines().some((l) => l.msg === "alert notification failed")).toBe(false);
  });

  it("bounds a hung receiver by the timeout on every attempt", async () => {
    const { receiver, sink, alerts, assertNoLeaks } = await setup(
      { format: "wecom", withKey: true, timeoutMs: 150 },
      () => "hang",
    );
    const started = Date.now();
    await alerts.raise(KEY, INFO);
    const elapsed = Date.now() - started;
    expect(receiver.requests).toHaveLength(3);
    expect(elapsed).toBeGreaterThanOrEqual(3 * 150);
    expect(elapsed).toBeLessThan(2000);
    expect(sink.lines().find((l) => l.msg === "alert notification failed")?.reason).toBe(
      `webhook ${receiver.origin} failed after 3 attempt(s): timed out after 150 ms`,
    );
    assertNoLeaks();
  });

  it("reports a refused connection by its code", async () => {
    const { receiver, sink, alerts, assertNoLeaks } = await setup({
      format: "wecom",
      withKey: true,
    });
    await receiver.close();
    await alerts.raise(KEY, INFO);
    expect(sink.lines().find((l) => l.msg === "alert notification failed")?.reason).toBe(
      `webhook ${receiver.origin} failed after 3 attempt(s): network error (ECONNREFUSED)`,
    );
    assertNoLeaks();
  });

  it("never echoes a rejected URL, and exposes only the origin", () => {
    expect(
      () => new WebhookNotifier({ url: `nope?key=${ROBOT_KEY}`, format: "wecom", timeoutMs: 1 }),
    ).toThrow(/^webhook url is not a valid URL$/);
    expect(
      () =>
        new WebhookNotifier({ url: `ftp://h/?key=${ROBOT_KEY}`, format: "wecom", timeoutMs: 1 }),
    ).toThrow(/^webhook url must be http or https, not ftp:$/);
    const webhook = new WebhookNotifier({
      url: `https://qyapi.example/cgi-bin/webhook/send?key=${ROBOT_KEY}`,
      format: "wecom",
      timeoutMs: 1,
    });
    expect(webhook.origin).toBe("https://qyapi.example");
  });
});
