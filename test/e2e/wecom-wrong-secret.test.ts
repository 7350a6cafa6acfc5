import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { startReceiver } from "../observability/helpers.js";

/**
 * Issue 12: "a wrong secret → FAILED_PRECONDITION naming 40001 and the fix,
 * one alert, at most one call a minute". WeCom blocks a corp for an hour
 * after about 2000 failed gettoken calls, so a crowd of callers asking for
 * every kind of a WeCom app whose secret is wrong must not turn into calls.
 * The production broker (prefetching, as configured by default), the
 * emulator and a webhook receiver; broker and emulator share a fake clock.
 */

const CORP = "ww00000000000sec01";
const AGENT = 1000002;
const RIGHT = "hr-agent-secret-right-0001";
const WRONG = "hr-agent-secret-wrong-0001";
const GETTOKEN = "/cgi-bin/gettoken";
const KINDS = [TokenKind.ACCESS_TOKEN, TokenKind.JSAPI_TICKET, TokenKind.WECOM_AGENT_TICKET];
const STEP_MS = 2_000;

interface Delivery {
  alert: string;
  state: string;
  app: string | null;
  details: Record<string, unknown>;
}

let b: EmulatedBroker | undefined;
let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
afterEach(async () => {
  await b?.close();
  await receiver?.close();
  b = undefined;
  receiver = undefined;
});

describe("a WeCom app with a wrong secret", () => {
  it("fails every caller with 40001 and the fix, calls gettoken at most once a minute, and alerts once", async () => {
    // The broker's secret is not the emulator's: record it for the leak scan too.
    recordLeakCandidate("secret", WRONG);
    const clock = new FakeClock();
    receiver = await startReceiver();
    b = await startEmulatedBroker(
      {
        apps: [],
        wecomApps: [
          { id: "hr", corpid: CORP, agentid: String(AGENT), secret: WRONG, prefetch: true },
        ],
        emulator: {
          wecom: { corps: [{ corpid: CORP, apps: [{ agentid: AGENT, secret: RIGHT }] }] },
        },
        config: {
          upstream: { timeoutMs: 1000 },
          alerts: { webhooks: [{ url: receiver.url, format: "generic" }] },
        },
      },
      { logger: silentLogger(), audit: silentLogger(), clock },
    );
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
    const tokens = createClient(TokenService, transport);
    const admin = createClient(AdminService, transport);
    const control = b.emulator.control;
    const start = clock.now();

    // Three simulated minutes of callers: four per kind every two seconds.
    const callTimes: number[] = [];
    const messages = new Set<string>();
    let seen = control.callCount(GETTOKEN, CORP);
    for (let i = 0; i < seen; i++) callTimes.push(clock.now()); // the prefetch
    while (clock.now() - start < 3 * 60_000) {
      const results = await Promise.all(
        KINDS.flatMap((kind) =>
          Array.from({ length: 4 }, () =>
            tokens.getToken({ appId: "hr", kind }).then(
              () => undefined,
              (err: unknown) => ConnectError.from(err),
            ),
          ),
        ),
      );
      for (const err of results) {
        expect(err?.code).toBe(Code.FailedPrecondition);
        messages.add(err?.rawMessage ?? "");
      }
      const now = control.callCount(GETTOKEN, CORP);
      for (; seen < now; seen++) callTimes.push(clock.now());
      await clock.advance(STEP_MS);
    }

    for (const message of messages) {
      expect(message).toContain("errcode 40001");
      expect(message).toContain("check the app's secret");
      expect(message).not.toContain(WRONG);
    }
    // Every call was a refused gettoken; none reached the ticket endpoints.
    expect(control.counters()[GETTOKEN]?.[CORP]?.errors).toEqual({ 40001: callTimes.length });
    expect(control.callCount("/cgi-bin/get_jsapi_ticket", CORP)).toBe(0);
    expect(control.callCount("/cgi-bin/ticket/get", CORP)).toBe(0);
    // At most one call a minute, over three minutes of callers.
    expect(callTimes.length).toBeGreaterThanOrEqual(1);
    expect(callTimes.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < callTimes.length; i++)
      expect((callTimes[i] ?? 0) - (callTimes[i - 1] ?? 0)).toBeGreaterThanOrEqual(60_000);

    // One alert, active now, naming the errcode.
    const status = await admin.getStatus({ appId: "hr" });
    expect(status.alerts.map((a) => [a.name, a.appId])).toEqual([["wechat_config_error", "hr"]]);
    expect(status.apps.map((a) => [a.appId, a.type])).toEqual([["hr", "wecom"]]);

    // The operator fixes the secret (here: WeCom is given the one the broker has); the next try
    // after the hold succeeds and the alert clears.
    control.updateWecomApp(CORP, String(AGENT), { secret: WRONG });
    await clock.advance(60_000);
    const token = await tokens.getToken({ appId: "hr", kind: TokenKind.WECOM_AGENT_TICKET });
    expect(token.token?.value).not.toBe("");
    expect((await admin.getStatus({ appId: "hr" })).alerts).toEqual([]);

    // Closing drains every alert delivery: then the receiver has them all.
    await b.close();
    b = undefined;
    const deliveries = receiver.requests.map((r) => JSON.parse(r.body) as Delivery);
    expect(deliveries.map((d) => [d.alert, d.state, d.app])).toEqual([
      ["wechat_config_error", "firing", "hr"],
      ["wechat_config_error", "resolved", "hr"],
    ]);
    expect(deliveries[0]?.details.errcode).toBe(40001);
    expect(receiver.requests.map((r) => r.body).join("\n")).not.toContain(WRONG);
  });

  it("after the secret is reset in WeCom, reports of the dead token cause at most one call a minute and one alert", async () => {
    const clock = new FakeClock();
    receiver = await startReceiver();
    b = await startEmulatedBroker(
      {
        apps: [],
        wecomApps: [{ id: "hr", corpid: CORP, agentid: String(AGENT), secret: RIGHT }],
        emulator: {
          wecom: { corps: [{ corpid: CORP, apps: [{ agentid: AGENT, secret: RIGHT }] }] },
        },
        config: {
          upstream: { timeoutMs: 1000 },
          alerts: { webhooks: [{ url: receiver.url, format: "generic" }] },
        },
      },
      { logger: silentLogger(), audit: silentLogger(), clock },
    );
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
    const tokens = createClient(TokenService, transport);
    const control = b.emulator.control;
    const held = (await tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN })).token;
    // Someone resets the app's secret in the admin console: the token dies, the broker's secret is wrong.
    const reset = "hr-agent-secret-reset-0001";
    control.updateWecomApp(CORP, String(AGENT), { secret: reset });
    const start = clock.now();
    let seen = control.callCount(GETTOKEN, CORP);
    const callTimes: number[] = [];
    const outcomes = new Set<string | undefined>();
    while (clock.now() - start < 3 * 60_000) {
      const reports = await Promise.all(
        Array.from({ length: 6 }, () =>
          tokens
            .invalidateToken({
              appId: "hr",
              kind: TokenKind.ACCESS_TOKEN,
              rejectedValue: held?.value ?? "",
              errcode: 40014,
            })
            .then(
              (res) => InvalidateOutcome[res.outcome],
              (err: unknown) => {
                const e = ConnectError.from(err);
                return e.rawMessage.includes("errcode 40001") ? Code[e.code] : e.message;
              },
            ),
        ),
      );
      for (const outcome of reports) outcomes.add(outcome);
      const now = control.callCount(GETTOKEN, CORP);
      for (; seen < now; seen++) callTimes.push(clock.now());
      await clock.advance(STEP_MS);
    }
    // Refused with the fix, or (once reports used their refreshes) answered with the current token.
    expect([...outcomes].sort()).toEqual(["FailedPrecondition", "RATE_LIMITED"]);
    expect(callTimes.length).toBeGreaterThanOrEqual(1);
    expect(callTimes.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < callTimes.length; i++)
      expect((callTimes[i] ?? 0) - (callTimes[i - 1] ?? 0)).toBeGreaterThanOrEqual(60_000);
    await b.close();
    b = undefined;
    const deliveries = receiver.requests.map((r) => JSON.parse(r.body) as Delivery);
    expect(deliveries.map((d) => [d.alert, d.state, d.app])).toEqual([
      ["wechat_config_error", "firing", "hr"],
    ]);
  });
});
