import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { failure } from "../helpers/connect-failure.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { logSink } from "../helpers/log-sink.js";

/**
 * Users' web OAuth grants (issue 11) through the whole broker, over real
 * HTTP to the emulator, which plays WeChat's rules R33-R37: a code is used
 * once and lives 5 minutes, a refresh token lives 30 days and is never
 * extended, a password change voids both tokens.
 */

const APP = { id: "web", appid: "wx000000000000oa01", secret: "web-secret-oauth-000000" };
const EXCHANGE = "/sns/oauth2/access_token";
const REFRESH = "/sns/oauth2/refresh_token";

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(
  clock?: FakeClock,
  more: Omit<Parameters<typeof startBrokerHarness>[2], "clock"> = {},
) {
  h = await startBrokerHarness([APP], 1000, { ...more, ...(clock ? { clock } : {}) });
  // Connect's gRPC client decodes grpc-status-details-bin into error details.
  const transport = createGrpcTransport({ baseUrl: `http://${h.grpcAddress}` });
  return {
    harness: h,
    oauth: createClient(OAuthService, transport),
    tokens: createClient(TokenService, transport),
    mint: (
      openid: string,
      scope: "snsapi_base" | "snsapi_userinfo" = "snsapi_base",
      unionid?: string,
    ) =>
      h?.emulator.control.authorizeUser(APP.appid, {
        openid,
        scope,
        ...(unionid ? { unionid } : {}),
      }).code ?? "",
    calls: (endpoint: string) => h?.emulator.control.callCount(endpoint, APP.appid) ?? 0,
  };
}

function reason(err: ConnectError): string | undefined {
  return err.findDetails(ErrorInfoSchema)[0]?.reason;
}

describe("ExchangeCode", () => {
  it("makes one upstream call for 50 concurrent exchanges of one code, and all get the same grant", async () => {
    const { oauth, mint, calls } = await start();
    const code = mint("o-user-1", "snsapi_userinfo", "u-union-1");
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => oauth.exchangeCode({ appId: APP.id, code })),
    );
    expect(calls(EXCHANGE)).toBe(1);
    const first = answers[0];
    expect(first?.openid).toBe("o-user-1");
    expect(first?.unionid).toBe("u-union-1");
    expect(first?.scope).toBe("snsapi_userinfo");
    expect(first?.token?.subject).toBe("o-user-1");
    expect(first?.token?.kind).toBe(TokenKind.USER_ACCESS_TOKEN);
    for (const a of answers) {
      expect(a.token?.value).toBe(first?.token?.value);
      expect(a.token?.version).toBe(first?.token?.version);
    }
    // The refresh token's end: 30 days from the authorization.
    const refreshEnd = first?.refreshExpiresAt ? timestampMs(first.refreshExpiresAt) : 0;
    expect(refreshEnd - Date.now()).toBeGreaterThan(29.9 * 86_400_000);
    expect(refreshEnd - Date.now()).toBeLessThanOrEqual(30 * 86_400_000);
  });

  it("answers a repeat 2 minutes later from the first exchange, and refuses it with REAUTHORIZE after the code's 5 minutes", async () => {
    const clock = new FakeClock();
    const { oauth, mint, calls } = await start(clock);
    const code = mint("o-user-2");
    const first = await oauth.exchangeCode({ appId: APP.id, code });
    await clock.advance(120_000);
    const again = await oauth.exchangeCode({ appId: APP.id, code });
    expect(calls(EXCHANGE)).toBe(1);
    expect(again.token?.value).toBe(first.token?.value);
    expect(again.openid).toBe(first.openid);
    await clock.advance(181_000);
    const late = await failure(oauth.exchangeCode({ appId: APP.id, code }));
    expect(calls(EXCHANGE)).toBe(2);
    // WeChat: an expired code is 40029, "invalid code": the request's code is bad.
    expect(late.code).toBe(Code.InvalidArgument);
    expect(reason(late)).toBe("REAUTHORIZE");
    expect(late.rawMessage).toContain("authorization again");
  });

  it("refuses a code WeChat does not know with INVALID_ARGUMENT and REAUTHORIZE, and never logs the code", async () => {
    const { oauth, calls } = await start();
    const err = await failure(oauth.exchangeCode({ appId: APP.id, code: "not-a-real-code-0001" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(reason(err)).toBe("REAUTHORIZE");
    expect(err.rawMessage).not.toContain("not-a-real-code-0001");
    expect(calls(EXCHANGE)).toBe(1);
  });

  it("validates its input before calling WeChat", async () => {
    const { oauth, calls } = await start();
    for (const [req, text] of [
      [{ appId: "", code: "abc" }, "app_id is required"],
      [{ appId: APP.id, code: "" }, "code is required"],
      [{ appId: APP.id, code: "has spaces in it" }, "not a WeChat authorization code"],
      [{ appId: "nope", code: "abc" }, "not configured"],
    ] as const) {
      const err = await failure(oauth.exchangeCode(req));
      expect(err.rawMessage).toContain(text);
      expect([Code.InvalidArgument, Code.NotFound]).toContain(err.code);
    }
    expect(calls(EXCHANGE)).toBe(0);
  });
});

describe("the user's token", () => {
  it("is served by GetToken with the subject, and one refresh past expiry serves 100 concurrent callers", async () => {
    const clock = new FakeClock();
    const { oauth, tokens, mint, calls } = await start(clock);
    const grant = await oauth.exchangeCode({ appId: APP.id, code: mint("o-user-3") });
    const req = { appId: APP.id, kind: TokenKind.USER_ACCESS_TOKEN, subject: "o-user-3" };
    const held = await tokens.getToken(req);
    expect(held.token?.value).toBe(grant.token?.value);
    expect(calls(REFRESH)).toBe(0);

    await clock.advance(7_300_000);
    const after = await Promise.all(Array.from({ length: 100 }, () => tokens.getToken(req)));
    expect(calls(REFRESH)).toBe(1);
    const values = new Set(after.map((r) => r.token?.value));
    expect(values.size).toBe(1);
    // Expired at WeChat, so WeChat issued a new token.
    expect([...values][0]).not.toBe(grant.token?.value);
    expect(after[0]?.token?.refreshExpiresAt).toEqual(grant.refreshExpiresAt);
  });

  it("needs the subject, and a user nobody authorized gets REAUTHORIZE without a call to WeChat", async () => {
    const { tokens, calls } = await start();
    const missing = await failure(
      tokens.getToken({ appId: APP.id, kind: TokenKind.USER_ACCESS_TOKEN }),
    );
    expect(missing.code).toBe(Code.InvalidArgument);
    const unknown = await failure(
      tokens.getToken({ appId: APP.id, kind: TokenKind.USER_ACCESS_TOKEN, subject: "o-nobody" }),
    );
    expect(unknown.code).toBe(Code.FailedPrecondition);
    expect(reason(unknown)).toBe("REAUTHORIZE");
    expect(calls(REFRESH)).toBe(0);
  });

  for (const [name, voidIt, errcode] of [
    ["an expired refresh token (42002)", "expire", 42002],
    ["a void refresh token (40030)", "void", 40030],
    ["a password change (42007)", "password", 42007],
  ] as const) {
    it(`after ${name}: REAUTHORIZE naming the errcode, and the grant is deleted`, async () => {
      const clock = new FakeClock();
      const { oauth, tokens, mint, calls, harness } = await start(clock);
      await oauth.exchangeCode({ appId: APP.id, code: mint("o-user-4") });
      const control = harness.emulator.control;
      if (voidIt === "expire") control.expireRefreshToken(APP.appid, { openid: "o-user-4" });
      else if (voidIt === "void") control.voidRefreshToken(APP.appid, { openid: "o-user-4" });
      else control.changeUserPassword(APP.appid, "o-user-4");
      await clock.advance(7_300_000);
      const req = { appId: APP.id, kind: TokenKind.USER_ACCESS_TOKEN, subject: "o-user-4" };
      const err = await failure(tokens.getToken(req));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(reason(err)).toBe("REAUTHORIZE");
      expect(err.findDetails(ErrorInfoSchema)[0]?.metadata.errcode).toBe(String(errcode));
      expect(calls(REFRESH)).toBe(1);
      const stored = await harness.broker.core.stores.store.get({
        appId: APP.id,
        kind: "user_access_token",
        subject: "o-user-4",
      });
      expect(stored).toBeUndefined();
      // Later callers are told the same without another call.
      await clock.advance(60_000);
      const again = await failure(tokens.getToken(req));
      expect(reason(again)).toBe("REAUTHORIZE");
      expect(calls(REFRESH)).toBe(1);
    });
  }
});

describe("ForgetUser", () => {
  it("deletes the grant, ends the user's watchers with REAUTHORIZE, and says whether there was one", async () => {
    const { oauth, tokens, mint } = await start();
    await oauth.exchangeCode({ appId: APP.id, code: mint("o-user-5") });
    const req = { appId: APP.id, kind: TokenKind.USER_ACCESS_TOKEN, subject: "o-user-5" };
    const stream = tokens.watchToken(req)[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value?.token?.subject).toBe("o-user-5");
    const ended = stream.next().then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect((await oauth.forgetUser({ appId: APP.id, openid: "o-user-5" })).forgotten).toBe(true);
    const end = await ended;
    expect(end?.code).toBe(Code.FailedPrecondition);
    expect(end && reason(end)).toBe("REAUTHORIZE");
    expect((await oauth.forgetUser({ appId: APP.id, openid: "o-user-5" })).forgotten).toBe(false);
    const err = await failure(tokens.getToken(req));
    expect(reason(err)).toBe("REAUTHORIZE");
  });
});

describe("memory and durability", () => {
  it("holds at most cache.maxUserTokens users' tokens in memory; the rest are read from the store, not re-fetched", async () => {
    const { oauth, tokens, mint, calls, harness } = await start(undefined, {
      config: { cache: { maxUserTokens: 5 } },
    });
    const users = Array.from({ length: 12 }, (_, i) => `o-lru-${i}`);
    const values = new Map<string, string | undefined>();
    for (const openid of users) {
      const g = await oauth.exchangeCode({ appId: APP.id, code: mint(openid) });
      values.set(openid, g.token?.value);
    }
    expect(harness.broker.manager.userTokensHeld).toBeLessThanOrEqual(5);
    for (const openid of users) {
      const got = await tokens.getToken({
        appId: APP.id,
        kind: TokenKind.USER_ACCESS_TOKEN,
        subject: openid,
      });
      expect(got.token?.value).toBe(values.get(openid));
    }
    expect(harness.broker.manager.userTokensHeld).toBeLessThanOrEqual(5);
    expect(calls(REFRESH)).toBe(0);
  });

  it("says loudly at start that the memory store loses users' grants, and alerts once a grant is held there", async () => {
    const sink = logSink();
    const { harness, oauth, mint } = await start(undefined, { logger: sink.logger });
    const line = sink.lines().find((l) => String(l.msg).startsWith("STORE IS NOT DURABLE"));
    expect(line).toMatchObject({ level: "warn", apps: ["web"] });
    const alerts = () => harness.broker.observability.alerts.active().map((a) => a.name);
    expect(alerts()).not.toContain("store_not_durable");
    await oauth.exchangeCode({ appId: APP.id, code: mint("o-at-risk") });
    expect(alerts()).toContain("store_not_durable");
  });
});

describe("a single node on the embedded durable store (sqlite)", () => {
  it("keeps every grant and version across a restart of the broker", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "broker-oauth-")), "broker.db");
    const store = { store: { type: "sqlite", path } };
    const sink = logSink();
    const first = await start(undefined, { config: store, logger: sink.logger });
    expect(sink.text()).not.toContain("STORE IS NOT DURABLE");
    const users = Array.from({ length: 10 }, (_, i) => `o-sqlite-${i}`);
    const before = new Map<string, { value?: string; version?: bigint }>();
    for (const openid of users) {
      const g = await first.oauth.exchangeCode({ appId: APP.id, code: first.mint(openid) });
      before.set(openid, { value: g.token?.value, version: g.token?.version });
    }
    await h?.close();
    h = undefined;

    const second = await start(undefined, { config: store });
    for (const openid of users) {
      const got = await second.tokens.getToken({
        appId: APP.id,
        kind: TokenKind.USER_ACCESS_TOKEN,
        subject: openid,
      });
      expect({ value: got.token?.value, version: got.token?.version }).toEqual(before.get(openid));
    }
    expect(second.calls(REFRESH)).toBe(0);
    expect(second.calls(EXCHANGE)).toBe(0);
  });
});
