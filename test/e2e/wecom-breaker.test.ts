import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";
import { DEFAULT_BREAKER_POLICY } from "../../src/upstream/upstream-breakers.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { sample } from "../helpers/resilience-harness.js";

/**
 * Issue 12: "WeCom faults trip the breaker for WeCom only". One official
 * account and one WeCom app on one broker (the production composition, the
 * emulator over HTTP for both hosts); WeCom answers -1 (busy) while the
 * official account's WeChat keeps working. The breaker runs on the fake clock
 * the broker and the emulator share, so its 30 s reset is driven by the test.
 */

const SHOP = { id: "shop", appid: "wx00000000000wcb01", secret: "shop-breaker-secret-0001" };
const CORP = "ww00000000000wcb01";
const HR = { agentid: 1000002, secret: "hr-breaker-secret-00000001" };
const GETTOKEN = "/cgi-bin/gettoken";
const WECOM_PATHS = [GETTOKEN, "/cgi-bin/get_jsapi_ticket", "/cgi-bin/ticket/get"];
const TOKEN = "/cgi-bin/token";
const SECOND = 1000;

let b: EmulatedBroker | undefined;
const clients: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await b?.close();
  b = undefined;
});

async function start() {
  const clock = new FakeClock();
  b = await startEmulatedBroker(
    {
      apps: [{ ...SHOP, type: "official_account" }],
      wecomApps: [{ id: "hr", corpid: CORP, agentid: String(HR.agentid), secret: HR.secret }],
      emulator: { wecom: { corps: [{ corpid: CORP, apps: [HR] }] } },
      config: { upstream: { timeoutMs: 1000 } },
    },
    { logger: silentLogger(), audit: silentLogger(), clock },
  );
  const address = `127.0.0.1:${b.broker.grpc.port}`;
  const { emulator, broker } = b;
  const tokens = createGrpcJsClient(TokenService, address);
  const admin = createGrpcJsClient(AdminService, address);
  clients.push(tokens, admin);
  return {
    clock,
    emulator,
    tokens,
    admin,
    wecomCalls: () => WECOM_PATHS.reduce((n, p) => n + emulator.control.callCount(p, CORP), 0),
    shopCalls: () => emulator.control.callCount(TOKEN, SHOP.appid),
    metric: async (name: string, labels: Record<string, string>) =>
      sample(await broker.observability.metrics.scrape(), name, labels),
  };
}

type GrpcError = { code: number; details: string };
async function failure(p: Promise<unknown>): Promise<GrpcError> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e as GrpcError,
  );
  if (!outcome) throw new Error("expected the call to fail");
  return outcome;
}

const hr = { appId: "hr", kind: TokenKind.ACCESS_TOKEN };
const shop = { appId: "shop", kind: TokenKind.ACCESS_TOKEN };

describe("a WeCom outage next to a working official account", () => {
  it("opens the WeCom app's breaker only: the official account keeps being served and refreshed, and WeCom recovers after the reset", async () => {
    const { clock, emulator, tokens, admin, wecomCalls, shopCalls, metric } = await start();
    const before = await tokens.getToken(shop);
    expect(shopCalls()).toBe(1);

    emulator.control.injectFault({
      endpoint: GETTOKEN,
      appid: CORP,
      action: { type: "errcode", errcode: -1 },
    });
    // The caller's call and its two inline retries all meet -1: the third fault opens the circuit.
    const busy = await failure(tokens.getToken(hr));
    expect(busy.code).toBe(status.UNAVAILABLE);
    expect(busy.details).toContain("-1");
    expect(wecomCalls()).toBe(DEFAULT_BREAKER_POLICY.volumeThreshold);
    const opened = clock.now();

    await clock.advance(2 * SECOND); // past the 1 s hold that answers callers with the last failure
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        failure(
          tokens.getToken({
            appId: "hr",
            kind: i % 2 ? TokenKind.WECOM_AGENT_TICKET : TokenKind.ACCESS_TOKEN,
          }),
        ),
      ),
    );
    const until = new Date(opened + DEFAULT_BREAKER_POLICY.resetMs).toISOString();
    for (const err of refused) {
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toContain(`circuit open until ${until}`);
    }
    expect(wecomCalls()).toBe(3); // nothing reaches WeCom while the circuit is open

    // The official account is untouched: served, and refreshed on a report, through WeChat.
    // (The reported token still works at WeChat, so the broker also raises its foreign-fetcher
    // alert for shop; that alert is not this test's subject.)
    const served = await tokens.getToken(shop);
    expect(served.token?.value).toBe(before.token?.value);
    const refreshed = await tokens.invalidateToken({
      ...shop,
      rejectedValue: before.token?.value ?? "",
      errcode: 40001,
    });
    expect(refreshed.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(refreshed.token?.version).toBe(2n);
    const ticket = await tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    expect(ticket.token?.value).not.toBe("");
    expect(shopCalls()).toBe(2);
    expect(emulator.control.callCount("/cgi-bin/ticket/getticket", SHOP.appid)).toBe(1);
    expect(emulator.control.checkToken(refreshed.token?.value ?? "").valid).toBe(true);
    expect(wecomCalls()).toBe(3);

    // Operators see which circuit is open: status and metrics, per app and endpoint.
    const status1 = await admin.getStatus({});
    const circuits = (s: typeof status1) =>
      Object.fromEntries(s.breakers.map((c) => [`${c.appId} ${c.endpoint}`, c.state]));
    expect(circuits(status1)).toMatchObject({
      [`hr ${GETTOKEN}`]: "open",
      [`shop ${TOKEN}`]: "closed",
    });
    expect(status1.breakers.find((c) => c.appId === "hr")?.openedAt).toBeDefined();
    const circuitAlerts = (st: typeof status1) =>
      st.alerts.filter((a) => a.name === "wechat_circuit_open").map((a) => a.appId);
    expect(circuitAlerts(status1)).toEqual(["hr"]);
    const STATE = "tokenbroker_breaker_state"; // 0 closed, 1 half-open, 2 open
    const OPENED = "tokenbroker_breaker_transitions_total";
    expect(await metric(STATE, { app: "hr", endpoint: GETTOKEN })).toBe(2);
    expect(await metric(OPENED, { app: "hr", endpoint: GETTOKEN, to: "open" })).toBe(1);
    expect(await metric(OPENED, { app: "shop", to: "open" })).toBeUndefined();
    const CALLS = "tokenbroker_upstream_calls_total";
    expect(await metric(CALLS, { endpoint: GETTOKEN, outcome: "-1" })).toBe(3);
    expect(await metric(CALLS, { endpoint: GETTOKEN, outcome: "circuit_open" })).toBeGreaterThan(0);
    expect(await metric(CALLS, { endpoint: TOKEN, outcome: "ok" })).toBe(2);

    // WeCom comes back; after the reset time one probe goes through and closes the circuit.
    emulator.control.clearFaults();
    await clock.advance(opened + DEFAULT_BREAKER_POLICY.resetMs - 1 - clock.now());
    const stillOpen = await failure(tokens.getToken(hr));
    expect(stillOpen.details).toContain(`circuit open until ${until}`);
    expect(wecomCalls()).toBe(3);
    await clock.advance(SECOND); // past the reset, and past the hold this refusal started
    const recovered = await tokens.getToken(hr);
    expect(recovered.token?.version).toBe(1n);
    expect(emulator.control.callCount(GETTOKEN, CORP)).toBe(4);
    const live = emulator.control.wecomTokens().find((t) => t.app === String(HR.agentid));
    expect(live?.value).toBe(recovered.token?.value);
    const agentTicket = await tokens.getToken({
      appId: "hr",
      kind: TokenKind.WECOM_AGENT_TICKET,
    });
    expect(agentTicket.token?.value).not.toBe("");
    const status2 = await admin.getStatus({});
    expect(circuits(status2)).toMatchObject({
      [`hr ${GETTOKEN}`]: "closed",
      [`shop ${TOKEN}`]: "closed",
    });
    expect(circuitAlerts(status2)).toEqual([]);
    expect(await metric(STATE, { app: "hr", endpoint: GETTOKEN })).toBe(0);
  });
});
