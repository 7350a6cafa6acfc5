import { createClient } from "@connectrpc/connect";
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
import { fingerprint } from "../../src/shared/fingerprint.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";

/**
 * A WeCom app through the paths every other kind has (issue 12): the status
 * RPC, the Prometheus listener and WatchToken, on the production broker in
 * front of the emulator's WeCom routes. The CLI is in wecom-cli.test.ts.
 */

const CORP = "ww00000000000pat01";
const HR = { agentid: 1000002, secret: "hr-agent-secret-paths-0001" };
const corps: WecomCorpSpec[] = [{ corpid: CORP, apps: [HR] }];

let b: EmulatedBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

async function start(clock?: FakeClock) {
  b = await startEmulatedBroker(
    {
      apps: [{ id: "shop", appid: "wx00000000000pat01", secret: "shop-secret-paths-0001" }],
      wecomApps: [{ id: "hr", corpid: CORP, agentid: String(HR.agentid), secret: HR.secret }],
      emulator: { wecom: { corps } },
      config: {
        upstream: { timeoutMs: 1000 },
        metrics: { listen: "127.0.0.1:0" },
        // Streams live through the simulated hours of a token's life.
        watch: { maxStreamAgeSeconds: 86_400 },
      },
    },
    { logger: silentLogger(), audit: silentLogger(), ...(clock ? { clock } : {}) },
  );
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
  return {
    broker: b,
    tokens: createClient(TokenService, transport),
    admin: createClient(AdminService, transport),
  };
}

const ALL = [TokenKind.ACCESS_TOKEN, TokenKind.JSAPI_TICKET, TokenKind.WECOM_AGENT_TICKET];

describe("a WeCom app through the status RPC", () => {
  it("lists the app with its type and kinds, and each credential held, the agent ticket included", async () => {
    const { tokens, admin } = await start();
    const held = new Map<TokenKind, string>();
    for (const kind of ALL)
      held.set(kind, (await tokens.getToken({ appId: "hr", kind })).token?.value ?? "");

    const status = await admin.getStatus({ appId: "hr" });
    expect(status.apps.map((a) => [a.appId, a.type, a.kinds])).toEqual([["hr", "wecom", ALL]]);
    const byKind = new Map(status.credentials.map((c) => [c.kind, c]));
    expect([...byKind.keys()].sort()).toEqual([...ALL].sort());
    for (const kind of ALL) {
      const c = byKind.get(kind);
      expect(c?.appId).toBe("hr");
      expect(c?.version).toBe(1n);
      expect(c?.fingerprint).toBe(fingerprint(held.get(kind) ?? "-"));
      expect(c?.lastError).toBe("");
      expect(c?.nextRefreshAt).toBeDefined();
    }
    // Every app, each with its own type.
    const all = await admin.getStatus({});
    expect(all.apps.map((a) => [a.appId, a.type])).toEqual([
      ["shop", "official_account"],
      ["hr", "wecom"],
    ]);
  });
});

describe("a WeCom app through the metrics listener", () => {
  it("exports its credentials' gauges and the WeCom endpoints' upstream calls", async () => {
    const { broker, tokens } = await start();
    for (const kind of ALL) await tokens.getToken({ appId: "hr", kind });
    const body = await (await fetch(`${broker.broker.metricsUrl}metrics`)).text();
    for (const kind of ["access_token", "jsapi_ticket", "wecom_agent_ticket"]) {
      expect(body).toMatch(
        new RegExp(
          `^tokenbroker_credential_remaining_seconds\\{app="hr",kind="${kind}"\\} \\d`,
          "m",
        ),
      );
      expect(body).toMatch(
        new RegExp(
          `^tokenbroker_refresh_total\\{app="hr",kind="${kind}",outcome="refreshed"\\} 1$`,
          "m",
        ),
      );
    }
    for (const endpoint of [
      "/cgi-bin/gettoken",
      "/cgi-bin/get_jsapi_ticket",
      "/cgi-bin/ticket/get",
    ])
      expect(body).toMatch(
        new RegExp(
          `^tokenbroker_upstream_calls_total\\{endpoint="${endpoint}",outcome="ok"\\} 1$`,
          "m",
        ),
      );
  });
});

describe("a WeCom app through WatchToken", () => {
  it("streams the current token, then the one fetched after WeCom invalidated it early", async () => {
    const { broker, tokens } = await start();
    const abort = new AbortController();
    const stream = tokens.watchToken(
      { appId: "hr", kind: TokenKind.ACCESS_TOKEN },
      { signal: abort.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    try {
      const first = (await it.next()).value;
      const value = first?.token?.value ?? "";
      expect(first?.token?.version).toBe(1n);
      broker.emulator.control.invalidateWecomToken(value);
      const report = await tokens.invalidateToken({
        appId: "hr",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: value,
        errcode: 40014,
      });
      expect(report.outcome).toBe(InvalidateOutcome.REFRESHED);
      const second = (await it.next()).value;
      expect(second?.token?.version).toBe(2n);
      expect(second?.token?.value).toBe(report.token?.value);
      expect(second?.token?.value).not.toBe(value);
      expect(second?.token?.kind).toBe(TokenKind.ACCESS_TOKEN);
    } finally {
      abort.abort();
      await it.return?.().catch(() => undefined);
    }
  });
});

describe("a WeCom token at the end of its life", () => {
  it("reaches watchers when WeCom issues the next one, and callers in its last seconds do not re-ask WeCom", async () => {
    // Within its validity WeCom answers gettoken with the same token, so asking again in its
    // last seconds is futile; with WeCom's hourly budget, a crowd doing so used it up just
    // before the one call that mattered, and every caller failed after the expiry.
    const clock = new FakeClock();
    const { broker, tokens } = await start(clock);
    const control = broker.emulator.control;
    const calls = () => control.callCount("/cgi-bin/gettoken", CORP);
    const abort = new AbortController();
    const watch = tokens
      .watchToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    try {
      const first = (await watch.next()).value?.token;
      expect(first?.version).toBe(1n);
      const expiresAt = clock.now() + Number(first?.expiresIn) * 1000;
      await clock.advance(expiresAt - clock.now() - 40_000);
      const next = watch.next();
      // Ten callers a second through the last 40 s and 40 s past the expiry.
      const failures: string[] = [];
      while (clock.now() < expiresAt + 40_000) {
        for (let i = 0; i < 10; i++)
          await tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }).catch((err) => {
            failures.push(String(err));
          });
        await clock.advance(1000);
      }
      expect(failures).toEqual([]);
      const second = (await next).value?.token;
      expect(second?.version).toBe(2n);
      expect(second?.value).not.toBe(first?.value);
      expect(control.wecomTokens().map((t) => t.value)).toContain(second?.value);
      // The first fetch, a re-ask at the refresh time and one near the end (both answered with
      // the same token), the fetch at the expiry; one more for a caller at most.
      expect(calls()).toBeGreaterThanOrEqual(2);
      expect(calls()).toBeLessThanOrEqual(5);
    } finally {
      abort.abort();
      await watch.return?.().catch(() => undefined);
    }
  });
});
