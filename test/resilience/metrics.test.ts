import { afterEach, describe, expect, it } from "vitest";
import { UpstreamConfigError } from "../../src/shared/errors.js";
import {
  MP,
  never,
  OA,
  type ResilienceHarness,
  sample,
  startResilienceHarness,
  TOKEN_PATH,
} from "../helpers/resilience-harness.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const ROTATED_SECRET = "rotated-mp-secret-a1b2c3d4e5f6";

let h: ResilienceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("/metrics during an outage and a config error", () => {
  it("moves the upstream, breaker, refresh and alert series, and leaks no secret or token", async () => {
    h = await startResilienceHarness();
    const harness = h;
    const url = await harness.startMetrics();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const scrape = () => harness.scrape();
    const upstream = (text: string, outcome: string) =>
      sample(text, "tokenbroker_upstream_calls_total", { endpoint: TOKEN_PATH, outcome });
    const refreshes = (text: string, app: string, outcome: string) =>
      sample(text, "tokenbroker_refresh_total", { app, kind: "access_token", outcome });
    const breaker = (text: string) =>
      sample(text, "tokenbroker_breaker_state", { app: OA.id, endpoint: TOKEN_PATH });

    // "oa" works; "mp" has a secret WeChat no longer accepts.
    const token = await harness.manager.get(OA.id, "access_token", never);
    harness.emulator.control.resetSecret(MP.appid, ROTATED_SECRET);
    await expect(harness.manager.get(MP.id, "access_token", never)).rejects.toBeInstanceOf(
      UpstreamConfigError,
    );
    await harness.settle();

    // WeChat down for "oa" from its scheduled refresh on.
    const refreshAt = harness.manager.nextRefreshAt(OA.id, "access_token") ?? Number.NaN;
    await harness.advanceTo(refreshAt - 1, { stepMs: MINUTE });
    harness.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      appid: OA.appid,
      action: { type: "http", status: 503 },
    });
    // Scheduled attempts at +1, +2, +4 s (503; the breaker opens), +8 s (not called).
    await harness.advance(10 * SECOND);
    expect(harness.calls(TOKEN_PATH, OA.appid)).toBe(4);

    const open = await scrape();
    expect(upstream(open, "http_503")).toBe(3);
    expect(upstream(open, "circuit_open")).toBe(1);
    expect(upstream(open, "40125")).toBe(1);
    expect(upstream(open, "ok")).toBe(1);
    expect(breaker(open)).toBe(2);
    expect(
      sample(open, "tokenbroker_breaker_transitions_total", {
        app: OA.id,
        endpoint: TOKEN_PATH,
        to: "open",
      }),
    ).toBe(1);
    expect(refreshes(open, OA.id, "failed")).toBe(4);
    expect(refreshes(open, OA.id, "refreshed")).toBe(1);
    expect(refreshes(open, MP.id, "failed")).toBe(1);
    expect(
      sample(open, "tokenbroker_alerts_total", { alert: "wechat_config_error", state: "firing" }),
    ).toBe(1);
    expect(
      sample(open, "tokenbroker_alerts_total", { alert: "wechat_circuit_open", state: "firing" }),
    ).toBe(1);
    expect(sample(open, "tokenbroker_alert_active", { alert: "wechat_config_error" })).toBe(1);
    expect(
      sample(open, "tokenbroker_credential_version", { app: OA.id, kind: "access_token" }),
    ).toBe(1);

    // 30 s after opening the breaker lets a probe through: half-open.
    await harness.advance(30 * SECOND);
    expect(breaker(await scrape())).toBe(1);

    // WeChat is back: the next scheduled attempt (+64 s) is the probe; it succeeds.
    harness.emulator.control.clearFaults();
    await harness.advance(30 * SECOND);
    const closed = await scrape();
    expect(harness.calls(TOKEN_PATH, OA.appid)).toBe(5);
    expect(breaker(closed)).toBe(0);
    expect(upstream(closed, "ok")).toBe(2);
    expect(upstream(closed, "http_503")).toBe(3);
    expect(refreshes(closed, OA.id, "refreshed")).toBe(2);
    expect(
      sample(closed, "tokenbroker_alerts_total", {
        alert: "wechat_circuit_open",
        state: "resolved",
      }),
    ).toBe(1);
    expect(
      sample(closed, "tokenbroker_credential_version", { app: OA.id, kind: "access_token" }),
    ).toBe(2);

    const fresh = harness.manager.peek(OA.id, "access_token");
    for (const text of [open, closed]) {
      for (const secret of [OA.secret, MP.secret, ROTATED_SECRET, token.value, fresh?.value]) {
        expect(text).not.toContain(secret);
      }
    }
  });
});
