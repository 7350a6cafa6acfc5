import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  GetTokenRequestSchema,
  InvalidateTokenRequestSchema,
  WatchTokenRequestSchema,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

const APPS = [
  { id: "demo", appid: "wx00000000000000d1", secret: "demo-secret-000000000" },
  {
    id: "mini",
    appid: "wx00000000000000m1",
    secret: "mini-secret-000000000",
    type: "mini_program" as const,
    brokerType: "mini_program" as const,
  },
  { id: "broken", appid: "wx00000000000000b1", secret: "right-secret-00000000" },
  { id: "quota", appid: "wx00000000000000q1", secret: "quota-secret-00000000" },
  { id: "down", appid: "wx00000000000000x1", secret: "down-secret-000000000" },
];

interface Caller {
  getToken(
    r: MessageInitShape<typeof GetTokenRequestSchema>,
  ): Promise<{ token?: { value: string; version: bigint; expiresIn: bigint; appId: string } }>;
  invalidateToken(r: MessageInitShape<typeof InvalidateTokenRequestSchema>): Promise<{
    token?: { value: string; version: bigint };
    refreshed: boolean;
    outcome: InvalidateOutcome;
  }>;
  watchToken(
    r: MessageInitShape<typeof WatchTokenRequestSchema>,
    signal: AbortSignal,
  ): AsyncIterable<{ token?: { version: bigint }; previousValidUntil?: unknown }>;
  status(err: unknown): { code: number; message: string };
}

let h: BrokerHarness;
const callers: Record<string, () => Caller> = {
  "grpc-js client on the gRPC port": () => {
    const c = createGrpcJsClient(TokenService, h.grpcAddress);
    return {
      getToken: (r) => c.getToken(r),
      invalidateToken: (r) => c.invalidateToken(r),
      watchToken: (r, signal) => c.watchToken(r, { signal }),
      status: (err) => ({
        code: (err as { code: number }).code,
        message: (err as { details: string }).details,
      }),
    };
  },
  "Connect JSON client on the Connect port": () => {
    const c = createClient(
      TokenService,
      createConnectTransport({
        baseUrl: h.broker.connect.url,
        httpVersion: "1.1",
        useBinaryFormat: false,
      }),
    );
    return {
      getToken: (r) => c.getToken(r),
      invalidateToken: (r) => c.invalidateToken(r),
      watchToken: (r, signal) => c.watchToken(r, { signal }),
      status: (err) => {
        const e = ConnectError.from(err);
        return { code: e.code, message: e.rawMessage };
      },
    };
  },
};

beforeAll(async () => {
  // Every transport below reports the demo token on one broker in real time:
  // more report-driven refreshes than the default burst of 3 per credential.
  h = await startBrokerHarness(APPS, undefined, { config: { invalidate: { refreshBurst: 100 } } });
  h.emulator.control.resetSecret("wx00000000000000b1", "rotated-in-the-console");
  h.emulator.control.setDailyLimit("wx00000000000000q1", "/cgi-bin/token", 0);
  h.emulator.control.injectFault({
    endpoint: "/cgi-bin/token",
    appid: "wx00000000000000x1",
    action: { type: "http", status: 503 },
  });
});
afterAll(async () => {
  await h.close();
});

describe.each(Object.keys(callers))("%s", (name) => {
  const caller = () => (callers[name] as () => Caller)();

  it("returns a token WeChat accepts, the same on both listeners", async () => {
    const res = await caller().getToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN });
    expect(res.token?.appId).toBe("demo");
    expect(h.emulator.control.checkToken(res.token?.value ?? "").valid).toBe(true);
    // A classic token is told to end 300 s after the broker will rotate it
    // (10-12 min before its 7200 s are up), not at 7200 s.
    expect(Number(res.token?.expiresIn)).toBeGreaterThan(7200 - 720 + 300 - 60);
    expect(Number(res.token?.expiresIn)).toBeLessThanOrEqual(7200 - 600 + 300);
    const current = await h.broker.manager.get(
      "demo",
      "access_token",
      new AbortController().signal,
    );
    expect(res.token?.value).toBe(current.value);
  });

  it.each<[string, MessageInitShape<typeof GetTokenRequestSchema>, Code, RegExp]>([
    [
      "an unknown app",
      { appId: "nope", kind: TokenKind.ACCESS_TOKEN },
      Code.NotFound,
      /app 'nope' is not configured/,
    ],
    ["a missing kind", { appId: "demo" }, Code.InvalidArgument, /kind is required/],
    [
      "a missing app id",
      { kind: TokenKind.ACCESS_TOKEN },
      Code.InvalidArgument,
      /app_id is required/,
    ],
    [
      "an unknown kind number",
      { appId: "demo", kind: 42 as TokenKind },
      Code.InvalidArgument,
      /kind 42 is not known/,
    ],
    [
      "a ticket of a mini program",
      { appId: "mini", kind: TokenKind.JSAPI_TICKET },
      Code.InvalidArgument,
      /mini program, which has no jsapi_ticket/,
    ],
    [
      "a wrong AppSecret",
      { appId: "broken", kind: TokenKind.ACCESS_TOKEN },
      Code.FailedPrecondition,
      /errcode 40125.*AppSecret/,
    ],
    [
      "an exhausted quota",
      { appId: "quota", kind: TokenKind.ACCESS_TOKEN },
      Code.ResourceExhausted,
      /errcode 45009/,
    ],
    [
      "WeChat down and nothing cached",
      { appId: "down", kind: TokenKind.ACCESS_TOKEN },
      Code.Unavailable,
      /(HTTP 503|circuit open until).*retry/,
    ],
  ])(
    "maps %s to the right status with an actionable message",
    async (_what, req, code, message) => {
      const err = await caller()
        .getToken(req)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, "the call should fail").toBeDefined();
      const status = caller().status(err);
      expect(Code[status.code]).toBe(Code[code]);
      expect(status.message).toMatch(message);
      for (const app of APPS) expect(status.message).not.toContain(app.secret);
    },
  );

  it("refuses an oversized request with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const c = caller();
    const err = await c
      .invalidateToken({
        appId: "demo",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: "x".repeat(100_000),
      })
      .catch((e: unknown) => e);
    expect(Code[c.status(err).code]).toBe(Code[Code.ResourceExhausted]);
    const ok = await c.getToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN });
    expect(ok.token?.value.length).toBeGreaterThan(0);
  });

  it("refreshes on InvalidateToken only when the reported value is current", async () => {
    const c = caller();
    const before = await c.getToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN });
    const first = await c.invalidateToken({
      appId: "demo",
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: before.token?.value ?? "",
      errcode: 40001,
    });
    expect(first.refreshed).toBe(true);
    expect(first.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(first.token?.version).toBe((before.token?.version ?? 0n) + 1n);
    const again = await c.invalidateToken({
      appId: "demo",
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: before.token?.value ?? "",
    });
    expect(again.refreshed).toBe(false);
    expect(again.outcome).toBe(InvalidateOutcome.ALREADY_REPLACED);
    expect(again.token?.version).toBe(first.token?.version);
    const err = await c
      .invalidateToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN, rejectedValue: "" })
      .catch((e: unknown) => e);
    expect(c.status(err).code).toBe(Code.InvalidArgument);
  });

  it("streams the current token, then each new version with the old one's overlap", async () => {
    const c = caller();
    const ac = new AbortController();
    const versions: bigint[] = [];
    const overlaps: unknown[] = [];
    const done = (async () => {
      try {
        for await (const m of c.watchToken(
          { appId: "demo", kind: TokenKind.ACCESS_TOKEN },
          ac.signal,
        )) {
          versions.push(m.token?.version ?? 0n);
          overlaps.push(m.previousValidUntil);
          if (versions.length === 3) ac.abort();
        }
      } catch {
        // cancelled by us
      }
    })();
    await expect.poll(() => versions.length).toBe(1);
    for (let i = 0; i < 2; i++) {
      const cur = await h.broker.manager.get("demo", "access_token", new AbortController().signal);
      await h.broker.manager.invalidate(
        "demo",
        "access_token",
        cur.value,
        40001,
        new AbortController().signal,
      );
    }
    await done;
    expect(versions).toEqual([versions[0], (versions[0] ?? 0n) + 1n, (versions[0] ?? 0n) + 2n]);
    expect(overlaps[0]).toBeUndefined();
    expect(overlaps[1]).toBeDefined();
  });

  it("gives 1000 concurrent callers on a cold cache one upstream fetch", async () => {
    // Each client kind takes a ticket kind nobody has asked for yet, so its cache is cold.
    const c = caller();
    const before = h.emulator.control.callCount("/cgi-bin/ticket/getticket");
    const kind = name.startsWith("grpc") ? TokenKind.JSAPI_TICKET : TokenKind.WX_CARD_TICKET;
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => c.getToken({ appId: "demo", kind })),
    );
    expect(h.emulator.control.callCount("/cgi-bin/ticket/getticket") - before).toBe(1);
    expect(new Set(results.map((r) => r.token?.value)).size).toBe(1);
  });
});
