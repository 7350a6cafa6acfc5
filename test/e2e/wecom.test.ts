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
import type { WecomCorpSpec } from "../../src/emulator/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { failure } from "../helpers/connect-failure.js";

/**
 * WeCom apps through the whole broker, against the emulator's WeCom rules
 * (R29-R32, C10) over real HTTP: a token per app, WeCom's own errcodes.
 */

const CORP = "ww000000000000c001";
// The emulator numbers agents; the broker's config takes the AgentId as text.
const HR = { agentid: 1000002, secret: "hr-agent-secret-000000001" };
const OA = { agentid: 1000003, secret: "oa-agent-secret-000000001" };
const app = (id: string, a: { agentid: number; secret: string }) => ({
  id,
  agentid: String(a.agentid),
  secret: a.secret,
});
const corps: WecomCorpSpec[] = [{ corpid: CORP, apps: [HR, OA] }];

let b: EmulatedBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

async function start(
  apps: Array<{ id: string; agentid?: string; secret: string; kinds?: string[] }>,
  wecom: { corps: WecomCorpSpec[] } = { corps },
) {
  b = await startEmulatedBroker(
    {
      apps: [],
      wecomApps: apps.map((a) => ({ ...a, corpid: CORP })),
      emulator: { wecom },
      config: { upstream: { timeoutMs: 1000 } },
    },
    { logger: silentLogger(), audit: silentLogger() },
  );
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
  return { broker: b, tokens: createClient(TokenService, transport) };
}

describe("WeCom apps", () => {
  it("gives two agents of one corp two tokens, each accepted only for its own agent", async () => {
    const { broker, tokens } = await start([app("hr", HR), app("oa", OA)]);
    const hr = await tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN });
    const oa = await tokens.getToken({ appId: "oa", kind: TokenKind.ACCESS_TOKEN });
    expect(hr.token?.value).not.toBe(oa.token?.value);
    const check = async (token: string | undefined, agentid: number) => {
      const url = `${broker.emulatorUrl}/cgi-bin/agent/get?access_token=${token}&agentid=${agentid}`;
      return ((await (await fetch(url)).json()) as { errcode: number }).errcode;
    };
    expect(await check(hr.token?.value, HR.agentid)).toBe(0);
    expect(await check(hr.token?.value, OA.agentid)).toBe(301002);
    expect(await check(oa.token?.value, OA.agentid)).toBe(0);
    expect(broker.emulator.control.callCount("/cgi-bin/gettoken", CORP)).toBe(2);
  });

  it("serves the corp's JS-SDK ticket and the app's agent ticket, fetched with the app's own token", async () => {
    const { tokens, broker } = await start([app("hr", HR)]);
    const corp = await tokens.getToken({ appId: "hr", kind: TokenKind.JSAPI_TICKET });
    const agent = await tokens.getToken({ appId: "hr", kind: TokenKind.WECOM_AGENT_TICKET });
    expect(corp.token?.value).not.toBe("");
    expect(agent.token?.value).not.toBe(corp.token?.value);
    const tickets = broker.emulator.control.wecomTickets();
    expect(JSON.stringify(tickets)).toContain(corp.token?.value ?? "-");
    expect(JSON.stringify(tickets)).toContain(agent.token?.value ?? "-");
  });

  it("refuses an agent ticket for a corp-level secret (no agentid) before calling WeCom", async () => {
    const { tokens, broker } = await start([{ id: "sync", secret: "contacts-secret-0000000001" }], {
      corps: [{ corpid: CORP, apps: [{ secret: "contacts-secret-0000000001" }] }],
    });
    const err = await failure(
      tokens.getToken({ appId: "sync", kind: TokenKind.WECOM_AGENT_TICKET }),
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("agentid");
    expect(broker.emulator.control.callCount("/cgi-bin/ticket/get", CORP)).toBe(0);
  });

  it("fails a wrong secret with FAILED_PRECONDITION naming 40001 as WeCom means it: the secret", async () => {
    const { tokens, broker } = await start([
      { ...app("hr", HR), secret: "wrong-secret-0000000000001" },
    ]);
    const err = await failure(tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("40001");
    expect(err.rawMessage).toContain("secret");
    expect(err.rawMessage).not.toContain("wrong-secret");
    // Callers meanwhile are held off WeCom.
    await failure(tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }));
    expect(broker.emulator.control.callCount("/cgi-bin/gettoken", CORP)).toBe(1);
  });

  it("fails 60020 with FAILED_PRECONDITION naming the IP to trust", async () => {
    const { tokens } = await start([app("hr", HR)], {
      corps: [{ corpid: CORP, apps: [{ ...HR, trustedIps: ["198.51.100.9"] }] }],
    });
    const err = await failure(tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("60020");
    expect(err.rawMessage).toContain("127.0.0.1");
    expect(err.rawMessage).toContain("trusted IPs");
  });

  it("re-fetches a token WeCom invalidated early (40014 report), and confirms one it still returns unchanged", async () => {
    const { tokens, broker } = await start([app("hr", HR)]);
    const first = await tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN });
    const value = first.token?.value ?? "";
    // Still valid at WeCom: a re-fetch returns the same token.
    const same = await tokens.invalidateToken({
      appId: "hr",
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: value,
      errcode: 42001,
    });
    expect(same.outcome).toBe(InvalidateOutcome.CONFIRMED_CURRENT);
    expect(same.token?.value).toBe(value);
    broker.emulator.control.invalidateWecomToken(value);
    const fresh = await tokens.invalidateToken({
      appId: "hr",
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: value,
      errcode: 40014,
    });
    expect(fresh.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(fresh.token?.value).not.toBe(value);
    // WeCom's 40001 is not a stale-token report.
    const wrong = await failure(
      tokens.invalidateToken({
        appId: "hr",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: fresh.token?.value ?? "",
        errcode: 40001,
      }),
    );
    expect(wrong.code).toBe(Code.InvalidArgument);
  });
});

describe("WeCom apps and operators' force refresh", () => {
  it("refuses a force refresh, naming the secret reset, without calling WeCom", async () => {
    const { broker } = await start([app("hr", HR)]);
    const transport = createGrpcTransport({
      baseUrl: `http://127.0.0.1:${broker.broker.grpc.port}`,
    });
    const admin = createClient(AdminService, transport);
    const refused = await failure(
      admin.forceRefresh({ appId: "hr", reason: "token pasted in a chat" }),
    );
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("WeCom returns the same token until it expires");
    expect(refused.rawMessage).toContain("reset the app's secret in the WeCom admin console");
    expect(broker.emulator.control.callCount("/cgi-bin/gettoken", CORP)).toBe(0);
  });
});
