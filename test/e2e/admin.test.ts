import { Writable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { createLogger } from "../../src/shared/logger.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { sample } from "../helpers/resilience-harness.js";

const STABLE = {
  id: "leaky",
  appid: "wx00000000000000l1",
  secret: "leaky-secret-0000000",
  tokenMode: "stable" as const,
};
const CLASSIC = { id: "shop", appid: "wx00000000000000s1", secret: "shop-secret-00000000" };

describe("AdminService", () => {
  let h: BrokerHarness;
  let lines: Record<string, unknown>[];
  let clock: FakeClock;
  afterEach(async () => {
    await h.close();
  });

  async function start() {
    lines = [];
    clock = new FakeClock();
    const destination = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split("\n"))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({ destination });
    h = await startBrokerHarness([STABLE, CLASSIC], 1000, {
      clock,
      logger,
      audit: logger.child({ stream: "audit" }),
    });
    return {
      admin: createGrpcJsClient(AdminService, h.grpcAddress),
      tokens: createGrpcJsClient(TokenService, h.grpcAddress),
    };
  }
  const codeOf = (e: unknown) => (e as { code: number }).code;
  // Interventions (the wrapper also writes an "admin_call" access line per call).
  const audit = () =>
    lines.filter(
      (l) => l.stream === "audit" && (l.event === "force_refresh" || l.event === "clear_quota"),
    );

  it("force-refreshes a leaked stable token at most 20 times a day, 30 s apart, each audited", async () => {
    const { admin, tokens } = await start();
    const leaked = (await tokens.getToken({ appId: "leaky", kind: TokenKind.ACCESS_TOKEN })).token;
    const first = await admin.forceRefresh({
      appId: "leaky",
      reason: "INC-42 token in a public repo",
    });
    expect(first.token?.value).not.toBe(leaked?.value);
    expect(first.token?.version).toBe(2n);
    expect(h.emulator.control.checkToken(first.token?.value ?? "").valid).toBe(true);

    await clock.advance(29_999);
    const tooSoon = await admin
      .forceRefresh({ appId: "leaky", reason: "again" })
      .catch((e: unknown) => e);
    expect(codeOf(tooSoon)).toBe(Code.ResourceExhausted);
    expect((tooSoon as { details: string }).details).toMatch(/less than 30 s apart; retry at /);

    // A second force 30 s after the first kills the leaked token at once (R16).
    await clock.advance(1);
    await admin.forceRefresh({ appId: "leaky", reason: "second rotation" });
    expect(h.emulator.control.checkToken(leaked?.value ?? "").valid).toBe(false);
    for (let i = 3; i <= 20; i++) {
      await clock.advance(30_000);
      await admin.forceRefresh({ appId: "leaky", reason: `drill ${i}` });
    }
    await clock.advance(30_000);
    const overDaily = await admin
      .forceRefresh({ appId: "leaky", reason: "21st" })
      .catch((e: unknown) => e);
    expect(codeOf(overDaily)).toBe(Code.ResourceExhausted);
    expect((overDaily as { details: string }).details).toMatch(/allows 20 a day/);
    expect(h.emulator.control.callCount("/cgi-bin/stable_token")).toBe(1 + 20);

    const records = audit();
    expect(records.filter((r) => r.outcome === "ok")).toHaveLength(20);
    expect(records.filter((r) => r.outcome === "refused")).toHaveLength(2);
    expect(records[0]).toMatchObject({
      event: "force_refresh",
      app: "leaky",
      reason: "INC-42 token in a public repo",
    });
    expect(JSON.stringify(lines)).not.toContain(STABLE.secret);
  });

  it("refuses to force a classic token, and requires a reason", async () => {
    const { admin } = await start();
    const classic = await admin
      .forceRefresh({ appId: "shop", reason: "x" })
      .catch((e: unknown) => e);
    expect(codeOf(classic)).toBe(Code.FailedPrecondition);
    expect((classic as { details: string }).details).toMatch(/classic tokens.*InvalidateToken/);
    // Refused before the ledger counts it: none of the 20 forces a day is used.
    const status = await admin.getStatus({ appId: "shop" });
    expect(status.quotas.find((q) => q.endpoint === "force_refresh")?.used).toBe(0n);
    const noReason = await admin
      .forceRefresh({ appId: "leaky", reason: " " })
      .catch((e: unknown) => e);
    expect(codeOf(noReason)).toBe(Code.InvalidArgument);
    const unknown = await admin.clearQuota({ appId: "nope", reason: "x" }).catch((e: unknown) => e);
    expect(codeOf(unknown)).toBe(Code.NotFound);
  });

  it("clears an exhausted quota through WeChat and the broker's ledger, audited", async () => {
    const { admin, tokens } = await start();
    h.emulator.control.setDailyLimit(CLASSIC.appid, "/cgi-bin/token", 0);
    const exhausted = await tokens
      .getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN })
      .catch((e: unknown) => e);
    expect(codeOf(exhausted)).toBe(Code.ResourceExhausted);
    h.emulator.control.setDailyLimit(CLASSIC.appid, "/cgi-bin/token", 2000);
    await admin.clearQuota({ appId: "shop", reason: "INC-7 45009 after a deploy loop" });
    await clock.advance(60_000); // past the failure hold
    const ok = await tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    expect(ok.token?.version).toBe(1n);
    expect(audit()).toEqual([
      expect.objectContaining({ event: "clear_quota", app: "shop", outcome: "ok" }),
    ]);
  });

  it("limits quota clears locally: 10 rapid clears call WeChat once, then 10 minutes apart, 3 a day", async () => {
    const { admin } = await start();
    const results = [];
    for (let i = 0; i < 10; i++) {
      results.push(
        await admin
          .clearQuota({ appId: "shop", reason: `loop ${i}` })
          .then(() => "ok")
          .catch((e: unknown) => e),
      );
    }
    expect(results[0]).toBe("ok");
    for (const refused of results.slice(1)) {
      expect(codeOf(refused)).toBe(Code.ResourceExhausted);
      expect((refused as { details: string }).details).toMatch(
        /less than 10 minutes ago and zeroed every counter.*10 a month\. Retry at 2026-01-01T04:10:00\.000Z/,
      );
    }
    expect(h.emulator.control.callCount("/cgi-bin/clear_quota/v2")).toBe(1);
    expect(audit().filter((r) => r.outcome === "refused")).toHaveLength(9);

    await clock.advance(10 * 60_000);
    await admin.clearQuota({ appId: "shop", reason: "second" });
    await clock.advance(10 * 60_000);
    await admin.clearQuota({ appId: "shop", reason: "third" });
    await clock.advance(10 * 60_000);
    const daily = await admin.clearQuota({ appId: "shop", reason: "4th" }).catch((e: unknown) => e);
    expect(codeOf(daily)).toBe(Code.ResourceExhausted);
    expect((daily as { details: string }).details).toMatch(
      /allows 3 clears a day \(quota.budgets.clear_quota\)/,
    );
    expect(h.emulator.control.callCount("/cgi-bin/clear_quota/v2")).toBe(3);
  });

  it("clears through the upstream guard: its breaker and metrics see the call like any WeChat call", async () => {
    const { admin } = await start();
    const CLEAR = "/cgi-bin/clear_quota/v2";
    const calls = async (outcome: string) =>
      sample(await h.broker.observability.metrics.scrape(), "tokenbroker_upstream_calls_total", {
        endpoint: CLEAR,
        outcome,
      });
    await admin.clearQuota({ appId: "shop", reason: "first" });
    expect(await calls("ok")).toBe(1);

    // WeChat's own monthly limit: RESOURCE_EXHAUSTED, audited, and counted under its errcode.
    await clock.advance(10 * 60_000);
    h.emulator.control.injectFault({
      endpoint: CLEAR,
      times: 1,
      action: { type: "errcode", errcode: 48006 },
    });
    const monthly = await admin
      .clearQuota({ appId: "shop", reason: "second" })
      .catch((e: unknown) => e);
    expect(codeOf(monthly)).toBe(Code.ResourceExhausted);
    expect((monthly as { details: string }).details).toMatch(/10 clears this month are used/);
    expect(await calls("48006")).toBe(1);

    // A WeChat fault: UNAVAILABLE, seen by the app's breaker for this endpoint.
    await clock.advance(10 * 60_000);
    h.emulator.control.injectFault({
      endpoint: CLEAR,
      times: 1,
      action: { type: "http", status: 503 },
    });
    const down = await admin
      .clearQuota({ appId: "shop", reason: "third" })
      .catch((e: unknown) => e);
    expect(codeOf(down)).toBe(Code.Unavailable);
    expect(await calls("http_503")).toBe(1);
    const status = await admin.getStatus({ appId: "shop" });
    expect(status.breakers.map((b) => [b.endpoint, b.state])).toEqual([[CLEAR, "closed"]]);
    expect(audit().map((r) => r.outcome)).toEqual(["ok", "refused", "refused"]);
  });

  it("reports credentials, quota use, circuits and alerts", async () => {
    const { admin, tokens } = await start();
    await tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    await tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    const s = await admin.getStatus({ appId: "shop" });
    expect(s.credentials.map((c) => [c.appId, c.kind, c.version])).toEqual([
      ["shop", TokenKind.ACCESS_TOKEN, 1n],
      ["shop", TokenKind.JSAPI_TICKET, 1n],
    ]);
    expect(s.credentials[0]?.nextRefreshAt).toBeDefined();
    expect(s.credentials[0]?.refreshOverdue).toBe(false);
    expect(s.quotas.find((q) => q.endpoint === "/cgi-bin/token")).toMatchObject({
      used: 1n,
      budget: 1800n,
    });
    expect(s.breakers.map((b) => b.state)).toEqual(["closed", "closed"]);
    expect(s.alerts).toEqual([]);
  });
});
