import { Code, createClient } from "@connectrpc/connect";
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
import { failure } from "../helpers/connect-failure.js";
import { FakeClock } from "../helpers/fake-clock.js";

/**
 * WeCom's limits are per hour and per corp, not a China day (facts §6.2):
 * the ledger counts ticket fetches per app and for the corp's apps together
 * (corp and agent tickets against one meter, as WeCom counts them), and
 * backs off for WeCom's window when the emulator (R31, R49) answers 45009.
 */

const CORP = "ww000000000000c0de";
const AGENTS = [1, 2, 3, 4, 5].map((n) => ({
  id: `app${n}`,
  agentid: 1_000_000 + n,
  secret: `agent-secret-${n}-0000000000`,
}));
const CORP_TICKET = "/cgi-bin/get_jsapi_ticket";
const AGENT_TICKET = "/cgi-bin/ticket/get";
const GETTOKEN = "/cgi-bin/gettoken";
const HOUR = 3_600_000;

let b: EmulatedBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

async function start(
  quota: Record<string, unknown>,
  limits: Record<string, unknown> = {},
  invalidate: Record<string, unknown> = {},
) {
  // The fake clock starts on a whole hour (04:00 UTC): windows are [04:00, 05:00).
  const clock = new FakeClock();
  b = await startEmulatedBroker(
    {
      apps: [],
      wecomApps: AGENTS.map((a) => ({
        id: a.id,
        corpid: CORP,
        agentid: String(a.agentid),
        secret: a.secret,
      })),
      emulator: {
        wecom: {
          corps: [
            { corpid: CORP, apps: AGENTS.map(({ agentid, secret }) => ({ agentid, secret })) },
          ],
          limits,
        },
      },
      config: { upstream: { timeoutMs: 1000 }, quota, invalidate },
    },
    { logger: silentLogger(), audit: silentLogger(), clock },
  );
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
  const { emulator } = b;
  return {
    clock,
    tokens: createClient(TokenService, transport),
    admin: createClient(AdminService, transport),
    calls: (path: string) => emulator.control.callCount(path, CORP),
  };
}

describe("WeCom's hourly limits in the quota ledger", () => {
  it("counts corp and agent tickets against one hourly budget per app and one per corp; the next hour is fresh", async () => {
    const { tokens, admin, clock, calls } = await start({
      budgets: { [CORP_TICKET]: 2, [AGENT_TICKET]: 2 },
      corpBudgets: { [CORP_TICKET]: 4, [AGENT_TICKET]: 4 },
    });
    const ticket = (appId: string, kind: TokenKind) => tokens.getToken({ appId, kind });
    // app1: its corp ticket and its agent ticket use its 2.
    await ticket("app1", TokenKind.JSAPI_TICKET);
    await ticket("app1", TokenKind.WECOM_AGENT_TICKET);
    // app2 and app3 take the corp to its 4.
    await ticket("app2", TokenKind.WECOM_AGENT_TICKET);
    await ticket("app3", TokenKind.WECOM_AGENT_TICKET);
    expect(calls(CORP_TICKET) + calls(AGENT_TICKET)).toBe(4);

    const corpFull = await failure(ticket("app4", TokenKind.WECOM_AGENT_TICKET));
    expect(corpFull.code).toBe(Code.ResourceExhausted);
    expect(corpFull.rawMessage).toContain(
      `corp ${CORP}'s (all its apps together) hourly budget of 4 calls is used up`,
    );
    expect(corpFull.rawMessage).toContain(new Date(clock.now() + HOUR).toISOString());
    expect(calls(CORP_TICKET) + calls(AGENT_TICKET)).toBe(4);

    // Status names the window and the corp's count beside the app's.
    const status = await admin.getStatus({ appId: "app4" });
    const row = status.quotas.find((q) => q.endpoint === AGENT_TICKET);
    expect(row).toMatchObject({
      window: "hour",
      used: 0n,
      budget: 2n,
      groupId: CORP,
      groupUsed: 4n,
      groupBudget: 4n,
    });
    // A WeCom app's status lists WeCom's endpoints only.
    expect(status.quotas.map((q) => q.endpoint).sort()).toEqual(
      [CORP_TICKET, GETTOKEN, AGENT_TICKET].sort(),
    );

    // The next hour: budgets are back.
    clock.set(clock.now() + HOUR);
    await ticket("app4", TokenKind.WECOM_AGENT_TICKET);
    expect(calls(AGENT_TICKET)).toBe(4);
  });

  it("keeps a corp under WeCom's 100 tickets an hour per app and 400 per corp with the default budgets", async () => {
    // Reports may cause up to 100 re-fetches of a credential at once here, so
    // 100 reports of each app's current ticket ask for 500 fetches in all.
    const { tokens, calls } = await start({}, {}, { refreshBurst: 100 });
    const outcomes: Record<string, number> = {};
    for (const a of AGENTS) {
      let value =
        (await tokens.getToken({ appId: a.id, kind: TokenKind.WECOM_AGENT_TICKET })).token?.value ??
        "";
      for (let i = 0; i < 100; i++) {
        const r = await tokens.invalidateToken({
          appId: a.id,
          kind: TokenKind.WECOM_AGENT_TICKET,
          rejectedValue: value,
          errcode: 40014,
        });
        value = r.token?.value ?? value;
        const outcome = InvalidateOutcome[r.outcome] ?? "?";
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }
    const tickets = calls(CORP_TICKET) + calls(AGENT_TICKET);
    // Below WeCom's 400 a corp: the broker stopped itself, WeCom never had to.
    expect(tickets).toBeLessThanOrEqual(320);
    expect(tickets).toBeGreaterThan(0);
    // Reports may use 80 % of each budget (the rest is kept for scheduled
    // refreshes): 64 of each app's 80, 256 of the corp's 320, counting the
    // first fetches. Four apps fetch 1 + 63; the fifth fetches its first
    // ticket (not a report) and finds the corp's share for reports used.
    expect(tickets).toBe(4 * 64 + 1);
    // WeCom returns the same ticket within its validity, so each fetch
    // confirms the current one; past the budgets a report is answered with
    // the current ticket, rate limited, and WeCom is not called.
    expect(outcomes).toEqual({ CONFIRMED_CURRENT: 4 * 63, RATE_LIMITED: 500 - 4 * 63 });
  });

  it("backs off for WeCom's window on 45009: a minute, then an hour when hit again", async () => {
    // WeCom allows this corp 2 tickets an hour; the broker's budgets would allow more.
    const { tokens, clock, calls } = await start({}, { ticketsPerCorpHour: 2 });
    await tokens.getToken({ appId: "app1", kind: TokenKind.WECOM_AGENT_TICKET });
    await tokens.getToken({ appId: "app2", kind: TokenKind.WECOM_AGENT_TICKET });
    const limited = await failure(
      tokens.getToken({ appId: "app3", kind: TokenKind.WECOM_AGENT_TICKET }),
    );
    expect(limited.rawMessage).toContain("45009");
    expect(limited.rawMessage).toContain("WeCom limits calls per minute and per hour for the corp");
    const afterLimit = calls(AGENT_TICKET);
    // The whole corp is blocked for a minute: no app's ticket reaches WeCom.
    for (const appId of ["app3", "app4", "app5"]) {
      const e = await failure(tokens.getToken({ appId, kind: TokenKind.WECOM_AGENT_TICKET }));
      expect(e.code).toBe(Code.ResourceExhausted);
    }
    expect(calls(AGENT_TICKET)).toBe(afterLimit);
    // A minute later the broker tries again; WeCom's hour is still used up: blocked for an hour.
    clock.set(clock.now() + 61_000);
    await failure(tokens.getToken({ appId: "app4", kind: TokenKind.WECOM_AGENT_TICKET }));
    expect(calls(AGENT_TICKET)).toBe(afterLimit + 1);
    clock.set(clock.now() + 30 * 60_000);
    const held = await failure(
      tokens.getToken({ appId: "app5", kind: TokenKind.WECOM_AGENT_TICKET }),
    );
    expect(held.code).toBe(Code.ResourceExhausted);
    // The ledger's refusal names WeCom's block and when the broker will try again.
    expect(held.rawMessage).toContain("WeCom answered a frequency limit (45009/45033)");
    expect(held.rawMessage).toMatch(/retry after \d{4}-\d\d-\d\dT/);
    expect(calls(AGENT_TICKET)).toBe(afterLimit + 1);
  });
});
