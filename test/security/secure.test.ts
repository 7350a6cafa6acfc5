import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckRequestSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  AdminService,
  ClearQuotaRequestSchema,
  ForceRefreshRequestSchema,
  GetStatusRequestSchema,
} from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  GetTokenRequestSchema,
  InvalidateTokenRequestSchema,
  TokenKind,
  TokenService,
  WatchTokenRequestSchema,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { rpcInterceptors } from "../../src/rpc/interceptors/index.js";
import { clientKey, hashApiKey, type SecurityPolicy } from "../../src/security/index.js";
import { registration } from "../../src/server/registration.js";
import { fingerprint } from "../../src/shared/fingerprint.js";
import { FakeClock } from "../helpers/fake-clock.js";
import {
  auditSink,
  type CallOptions,
  callContext,
  fakeAdminService,
  fakeTokenService,
  KEYS,
  POLICY,
  refusal,
  served,
  TOKEN_VALUE,
} from "./helpers.js";

function setup(policy: SecurityPolicy = POLICY) {
  const audit = auditSink();
  const clock = new FakeClock();
  const tokens = fakeTokenService();
  const admin = fakeAdminService();
  const chain = rpcInterceptors({ policy, clock, audit: audit.logger });
  const token = served(TokenService, tokens.impl, chain);
  const adm = served(AdminService, admin.impl, chain);
  const ctx = (method: keyof typeof TokenService.method, c?: CallOptions) =>
    callContext(TokenService.method[method], c);
  const actx = (method: keyof typeof AdminService.method, c?: CallOptions) =>
    callContext(AdminService.method[method], c);
  return { audit, clock, tokens, admin, token, adm, ctx, actx, chain };
}

const get = (appId = "shop", kind = TokenKind.ACCESS_TOKEN) =>
  create(GetTokenRequestSchema, { appId, kind });

const ORDERS = { key: KEYS.orders } as const;
const OPS = { key: KEYS.ops } as const;

describe("client address (rule 1)", () => {
  it("lets in a peer inside allowCidrs: IPv4, IPv6 and IPv4-mapped IPv6", async () => {
    const s = setup();
    for (const peer of ["127.0.0.1", "10.20.30.40", "::ffff:10.1.2.3", "2001:db8:5::1"]) {
      await expect(
        s.token.getToken(get(), s.ctx("getToken", { ...OPS, peer })),
      ).resolves.toBeDefined();
    }
    expect(s.tokens.calls).toHaveLength(4);
  });

  it("refuses other addresses with PERMISSION_DENIED before looking at credentials", async () => {
    const s = setup();
    for (const peer of ["192.168.1.5", "::ffff:192.168.1.5", "2001:db9::1", "::1"]) {
      const err = await refusal(() => s.token.getToken(get(), s.ctx("getToken", { peer })));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toBe(`address ${peer} is not allowed to use this broker`);
    }
    expect(s.tokens.calls).toHaveLength(0);
    expect(s.audit.lines()[0]).toMatchObject({
      event: "address_denied",
      client: null,
      address: "192.168.1.5",
      method: "GetToken",
      app: "shop",
      kind: "access_token",
      code: "permission_denied",
    });
  });

  it("refuses a call whose socket is already gone when allowCidrs is set", async () => {
    const s = setup();
    const err = await refusal(() => s.token.getToken(get(), s.ctx("getToken", { peer: null })));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe("address unknown is not allowed to use this broker");
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const s = setup();
    const forged = await refusal(() =>
      s.token.getToken(
        get(),
        s.ctx("getToken", {
          ...OPS,
          peer: "192.168.1.5",
          headers: { "x-forwarded-for": "10.1.1.1" },
        }),
      ),
    );
    expect(forged.rawMessage).toBe("address 192.168.1.5 is not allowed to use this broker");
    // And cannot be used to make an allowed caller look disallowed either.
    await expect(
      s.token.getToken(
        get(),
        s.ctx("getToken", {
          ...OPS,
          peer: "10.1.1.1",
          headers: { "x-forwarded-for": "192.168.1.5" },
        }),
      ),
    ).resolves.toBeDefined();
  });

  it("applies allowCidrs to the forwarded address from a trusted proxy", async () => {
    const s = setup();
    const viaProxy = (xff: string) =>
      s.ctx("getToken", { ...OPS, peer: "10.9.0.1", headers: { "x-forwarded-for": xff } });
    const err = await refusal(() => s.token.getToken(get(), viaProxy("203.0.113.9")));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      "address 203.0.113.9 (forwarded by 10.9.0.1) is not allowed to use this broker",
    );
    expect(s.audit.lines()[0]).toMatchObject({ address: "203.0.113.9", via: "10.9.0.1" });
    // A chain whose left-most entry is forged: the entry our proxy appended decides.
    const chain = await refusal(() =>
      s.token.getToken(get(), viaProxy("10.1.1.1, 203.0.113.9, 10.9.0.7")),
    );
    expect(chain.rawMessage).toMatch(/^address 203\.0\.113\.9 /);
    await expect(s.token.getToken(get(), viaProxy("203.0.113.9, 10.1.1.1"))).resolves.toBeDefined();
    await expect(s.token.getToken(get(), viaProxy("10.1.1.1, 10.9.0.7"))).resolves.toBeDefined();
  });

  it("lets any address in when allowCidrs is empty", async () => {
    const s = setup({ ...POLICY, allowCidrs: [] });
    await expect(
      s.token.getToken(get(), s.ctx("getToken", { ...OPS, peer: "203.0.113.9" })),
    ).resolves.toBeDefined();
  });
});

describe("identity (rule 2)", () => {
  it("recognises an API key and puts the client id into the handler context", async () => {
    const s = setup();
    const ctx = s.ctx("getToken", ORDERS);
    await s.token.getToken(get(), ctx);
    expect(ctx.values.get(clientKey)).toBe("orders-service");
    expect(s.tokens.calls).toEqual([{ method: "GetToken", client: "orders-service" }]);
  });

  it("accepts the scheme in any case and surrounding spaces", async () => {
    const s = setup();
    const ctx = s.ctx("getToken", { headers: { authorization: `  bEaReR   ${KEYS.orders} ` } });
    await s.token.getToken(get(), ctx);
    expect(ctx.values.get(clientKey)).toBe("orders-service");
  });

  it("recognises a client certificate's CN", async () => {
    const s = setup();
    const ctx = s.actx("getStatus", { tls: "ops.broker.internal" });
    await s.adm.getStatus(create(GetStatusRequestSchema, {}), ctx);
    expect(ctx.values.get(clientKey)).toBe("ops");
  });

  it("refuses a call without credentials with UNAUTHENTICATED saying what to send", async () => {
    const s = setup();
    const err = await refusal(() => s.token.getToken(get(), s.ctx("getToken")));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe(
      "this broker requires authentication: send authorization: Bearer <api key> or a client certificate",
    );
    expect(s.tokens.calls).toHaveLength(0);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({
        event: "auth_failure",
        client: null,
        address: "127.0.0.1",
        method: "GetToken",
        code: "unauthenticated",
        level: "warn",
      }),
    ]);
  });

  it("refuses an unknown key without echoing it", async () => {
    const s = setup();
    const guess = `${KEYS.orders.slice(0, -1)}X`;
    const err = await refusal(() => s.token.getToken(get(), s.ctx("getToken", { key: guess })));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe("unknown API key: no client of this broker has it");
    expect(s.audit.text()).not.toContain(guess);
    expect(s.audit.text()).not.toContain(hashApiKey(guess));
  });

  it("refuses an authorization header that is not a Bearer key", async () => {
    const s = setup();
    for (const authorization of [`Basic ${KEYS.orders}`, "Bearer", "Bearer a b", KEYS.orders]) {
      const err = await refusal(() =>
        s.token.getToken(get(), s.ctx("getToken", { headers: { authorization } })),
      );
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.rawMessage).toBe("the authorization header must be 'Bearer <api key>'");
    }
    expect(s.audit.text()).not.toContain(KEYS.orders);
  });

  it("refuses a certificate that belongs to no client, naming its CN", async () => {
    const s = setup();
    const err = await refusal(() =>
      s.token.getToken(get(), s.ctx("getToken", { tls: "intruder" })),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe(
      "the client certificate 'intruder' is not a configured client; send authorization: Bearer <api key> or a client certificate",
    );
    expect(s.audit.lines()[0]).toMatchObject({ event: "auth_failure", tlsIdentity: "intruder" });
  });

  it("goes by the key when both are sent: a wrong key is not saved by a good certificate", async () => {
    const s = setup();
    const wrong = await refusal(() =>
      s.adm.getStatus(
        create(GetStatusRequestSchema, {}),
        s.actx("getStatus", { key: "nope", tls: "ops.broker.internal" }),
      ),
    );
    expect(wrong.rawMessage).toBe("unknown API key: no client of this broker has it");
    const ctx = s.ctx("getToken", { ...ORDERS, tls: "ops.broker.internal" });
    await s.token.getToken(get(), ctx);
    expect(ctx.values.get(clientKey)).toBe("orders-service");
  });

  it("matches a key whose configured hash is upper-case hex", async () => {
    const s = setup();
    const ctx = s.ctx("getToken", OPS);
    await s.token.getToken(get("anything"), ctx);
    expect(ctx.values.get(clientKey)).toBe("ops");
  });

  it("with no clients configured treats every caller as anonymous, with every permission and no limits", async () => {
    const s = setup({ clients: [] });
    const ctx = s.ctx("getToken", { key: "whatever", peer: "203.0.113.9" });
    await s.token.getToken(get("any-app", TokenKind.WX_CARD_TICKET), ctx);
    expect(ctx.values.get(clientKey)).toBe("anonymous");
    await s.adm.forceRefresh(
      create(ForceRefreshRequestSchema, { appId: "x", reason: "r" }),
      s.actx("forceRefresh"),
    );
    for (let i = 0; i < 300; i++) await s.token.getToken(get(), s.ctx("getToken"));
    expect(s.tokens.calls).toHaveLength(301);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({ event: "admin_call", client: "anonymous", method: "ForceRefresh" }),
    ]);
  });

  it("still applies allowCidrs with no clients configured", async () => {
    const s = setup({ clients: [], allowCidrs: ["127.0.0.0/8"] });
    const err = await refusal(() =>
      s.token.getToken(get(), s.ctx("getToken", { peer: "10.0.0.1" })),
    );
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("authorization (rule 3)", () => {
  it("refuses a method the client has no permission for, naming client, permission and method", async () => {
    const s = setup();
    const err = await refusal(() =>
      s.adm.forceRefresh(
        create(ForceRefreshRequestSchema, { appId: "shop", reason: "incident 7" }),
        s.actx("forceRefresh", ORDERS),
      ),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      "client 'orders-service' does not have the 'admin' permission (needed for ForceRefresh)",
    );
    expect(s.admin.calls).toHaveLength(0);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({
        event: "permission_denied",
        client: "orders-service",
        method: "ForceRefresh",
        app: "shop",
        kind: "access_token",
      }),
    ]);
  });

  it("maps each TokenService method to its permission", async () => {
    const s = setup();
    const getter = { tls: "ops.broker.internal" }; // get + admin, every app
    const inv = await refusal(() =>
      s.token.invalidateToken(
        create(InvalidateTokenRequestSchema, { appId: "shop", kind: TokenKind.ACCESS_TOKEN }),
        s.ctx("invalidateToken", getter),
      ),
    );
    expect(inv.rawMessage).toMatch(/'invalidate' permission \(needed for InvalidateToken\)/);
    const watch = await refusal(async () => {
      for await (const _ of s.token.watchToken(
        create(WatchTokenRequestSchema, { appId: "shop", kind: TokenKind.ACCESS_TOKEN }),
        s.ctx("watchToken", getter),
      )) {
        // not reached
      }
    });
    expect(watch.code).toBe(Code.PermissionDenied);
    expect(watch.rawMessage).toMatch(/'watch' permission \(needed for WatchToken\)/);
    await expect(s.token.getToken(get(), s.ctx("getToken", getter))).resolves.toBeDefined();
  });

  it("refuses an app outside the client's list, naming client, permission and app", async () => {
    const s = setup();
    const err = await refusal(() => s.token.getToken(get("billing"), s.ctx("getToken", ORDERS)));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      "client 'orders-service' does not have 'get' permission for app 'billing'; the broker's operator can add the app to the client's apps",
    );
  });

  it("refuses a kind outside the client's list, naming it", async () => {
    const s = setup();
    const err = await refusal(() =>
      s.token.getToken(get("shop", TokenKind.WX_CARD_TICKET), s.ctx("getToken", ORDERS)),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      "client 'orders-service' does not have 'get' permission for kind wx_card_ticket of app 'shop' (its kinds: access_token, jsapi_ticket)",
    );
    await expect(
      s.token.getToken(get("shop", TokenKind.JSAPI_TICKET), s.ctx("getToken", ORDERS)),
    ).resolves.toBeDefined();
  });

  it("leaves an unspecified or unknown kind to the handler's INVALID_ARGUMENT", async () => {
    const s = setup();
    await s.token.getToken(get("shop", TokenKind.UNSPECIFIED), s.ctx("getToken", ORDERS));
    await s.token.getToken(get("shop", 99 as TokenKind), s.ctx("getToken", ORDERS));
    expect(s.tokens.calls).toHaveLength(2);
  });

  it("refuses a request without app_id to a client limited to some apps", async () => {
    const s = setup();
    const err = await refusal(() => s.token.getToken(get(""), s.ctx("getToken", ORDERS)));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      "client 'orders-service' has 'get' permission only for its own apps and this request names none; set app_id",
    );
    // A client with every app reaches the handler, whose validation answers.
    await s.token.getToken(get(""), s.ctx("getToken", OPS));
    expect(s.tokens.calls).toEqual([{ method: "GetToken", client: "ops" }]);
  });

  it("lets an admin limited to some apps ask GetStatus only about them, by name", async () => {
    const s = setup();
    const shopAdmin = { tls: "shop-admin" };
    // An empty app_id would show every app: a limited admin must name its app.
    const all = await refusal(() =>
      s.adm.getStatus(create(GetStatusRequestSchema, {}), s.actx("getStatus", shopAdmin)),
    );
    expect(all.code).toBe(Code.PermissionDenied);
    expect(all.rawMessage).toMatch(/only for its own apps and this request names none; set app_id/);
    await s.adm.getStatus(
      create(GetStatusRequestSchema, { appId: "shop" }),
      s.actx("getStatus", shopAdmin),
    );
    const err = await refusal(() =>
      s.adm.getStatus(
        create(GetStatusRequestSchema, { appId: "billing" }),
        s.actx("getStatus", shopAdmin),
      ),
    );
    expect(err.rawMessage).toBe(
      "client 'shop-admin' does not have 'admin' permission for app 'billing'; the broker's operator can add the app to the client's apps",
    );
    const clear = await refusal(() =>
      s.adm.clearQuota(
        create(ClearQuotaRequestSchema, { appId: "billing", reason: "45009" }),
        s.actx("clearQuota", shopAdmin),
      ),
    );
    expect(clear.code).toBe(Code.PermissionDenied);
    // Nor may it leave app_id empty elsewhere.
    const force = await refusal(() =>
      s.adm.forceRefresh(
        create(ForceRefreshRequestSchema, { appId: "", reason: "x" }),
        s.actx("forceRefresh", shopAdmin),
      ),
    );
    expect(force.rawMessage).toMatch(/this request names none; set app_id$/);
    expect(s.admin.calls.map((c) => c.method)).toEqual(["GetStatus"]);
  });

  it("treats ForceRefresh as acting on the access_token", async () => {
    const policy: SecurityPolicy = {
      clients: [
        {
          id: "tickets",
          tlsIdentity: "t",
          apps: ["*"],
          kinds: ["jsapi_ticket"],
          permissions: ["admin"],
        },
      ],
    };
    const s = setup(policy);
    const err = await refusal(() =>
      s.adm.forceRefresh(
        create(ForceRefreshRequestSchema, { appId: "shop", reason: "x" }),
        s.actx("forceRefresh", { tls: "t" }),
      ),
    );
    expect(err.rawMessage).toMatch(/for kind access_token of app 'shop'/);
    await s.adm.clearQuota(
      create(ClearQuotaRequestSchema, { appId: "shop", reason: "x" }),
      s.actx("clearQuota", { tls: "t" }),
    );
  });

  it("requires admin for methods it does not know (fail closed)", async () => {
    const s = setup();
    const checks: string[] = [];
    const health = served(
      Health,
      {
        check: () => {
          checks.push("check");
          return {};
        },
        async *watch() {},
        list: () => ({}),
      } as unknown as ServiceImpl<typeof Health>,
      s.chain,
    );
    const hctx = (c: CallOptions) => callContext(Health.method.check, c);
    const req = create(HealthCheckRequestSchema, {});
    const denied = await refusal(() => health.check(req, hctx(ORDERS)));
    expect(denied.rawMessage).toBe(
      "client 'orders-service' does not have the 'admin' permission (needed for Check)",
    );
    // An admin limited to some apps: the request names no app, so no.
    await expect(
      refusal(() => health.check(req, hctx({ tls: "shop-admin" }))),
    ).resolves.toBeInstanceOf(ConnectError);
    await health.check(req, hctx(OPS));
    expect(checks).toEqual(["check"]);
  });

  it("refuses to wrap client- or bidi-streaming methods", () => {
    const s = setup();
    expect(() =>
      registration(ServerReflection, {} as ServiceImpl<typeof ServerReflection>, s.chain),
    ).toThrow(/cannot guard grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo/);
  });

  it("names an invalid app id in messages and audit only by its length and fingerprint", async () => {
    const s = setup();
    const junk = `evil\n${"x".repeat(200)}`;
    const err = await refusal(() => s.token.getToken(get(junk), s.ctx("getToken", ORDERS)));
    expect(err.rawMessage).toBe(
      `client 'orders-service' does not have 'get' permission for an invalid app_id (205 chars, fingerprint ${fingerprint(junk)}); the broker's operator can add the app to the client's apps`,
    );
    expect(s.audit.lines()[0]).toMatchObject({
      app: `(invalid app_id: 205 chars, fingerprint ${fingerprint(junk)})`,
    });
    expect(s.audit.text()).not.toContain("xxxxxxxx");
  });
});

describe("admin audit (rule 5)", () => {
  it("writes one line per admin call with the client, app and outcome", async () => {
    const s = setup();
    await s.adm.forceRefresh(
      create(ForceRefreshRequestSchema, { appId: "shop", reason: "incident 7" }),
      s.actx("forceRefresh", OPS),
    );
    s.admin.failWith.error = new ConnectError("WeChat allows 20 a day", Code.ResourceExhausted);
    const err = await refusal(() =>
      s.adm.forceRefresh(
        create(ForceRefreshRequestSchema, { appId: "shop", reason: "again" }),
        s.actx("forceRefresh", {
          tls: "shop-admin",
          peer: "10.9.0.1",
          headers: { "x-forwarded-for": "10.4.4.4" },
        }),
      ),
    );
    expect(err).toBe(s.admin.failWith.error); // the handler's error passes through untouched
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({
        level: "info",
        event: "admin_call",
        client: "ops",
        address: "127.0.0.1",
        method: "ForceRefresh",
        app: "shop",
        kind: "access_token",
        outcome: "ok",
      }),
      expect.objectContaining({
        event: "admin_call",
        client: "shop-admin",
        address: "10.4.4.4",
        via: "10.9.0.1",
        tlsIdentity: "shop-admin",
        outcome: "resource_exhausted",
      }),
    ]);
    expect(s.admin.calls).toEqual([
      { method: "ForceRefresh", client: "ops" },
      { method: "ForceRefresh", client: "shop-admin" },
    ]);
  });

  it("writes nothing for admitted TokenService calls", async () => {
    const s = setup();
    await s.token.getToken(get(), s.ctx("getToken", ORDERS));
    expect(s.audit.text()).toBe("");
  });

  it("never writes a key, a key hash or a token", async () => {
    const s = setup();
    const attempts: Array<() => unknown> = [
      () => s.token.getToken(get(), s.ctx("getToken", ORDERS)),
      () => s.token.getToken(get(), s.ctx("getToken", { key: `${KEYS.ops}x` })),
      () => s.token.getToken(get("billing"), s.ctx("getToken", ORDERS)),
      () =>
        s.adm.forceRefresh(
          create(ForceRefreshRequestSchema, { appId: "shop", reason: "r" }),
          s.actx("forceRefresh", OPS),
        ),
      () => s.adm.getStatus(create(GetStatusRequestSchema, {}), s.actx("getStatus", ORDERS)),
    ];
    for (let i = 0; i < 6; i++)
      attempts.push(() => s.token.getToken(get(), s.ctx("getToken", ORDERS)));
    const messages: string[] = [];
    for (const attempt of attempts) {
      try {
        await attempt();
      } catch (err) {
        messages.push((err as ConnectError).message);
      }
    }
    const events = s.audit.lines().map((l) => l.event);
    expect(events).toEqual([
      "auth_failure",
      "permission_denied",
      "admin_call",
      "permission_denied",
      "rate_limited", // the other three are counted (see refusal-log.test.ts)
    ]);
    const everything = `${s.audit.text()}\n${messages.join("\n")}`;
    for (const secret of [KEYS.orders, KEYS.ops, `${KEYS.ops}x`, TOKEN_VALUE]) {
      expect(everything).not.toContain(secret);
    }
    for (const hash of [
      hashApiKey(KEYS.orders),
      hashApiKey(KEYS.ops),
      hashApiKey(`${KEYS.ops}x`),
    ]) {
      expect(everything.toLowerCase()).not.toContain(hash.slice(0, 12));
    }
  });
});

describe("handler context", () => {
  it("does not leak the client id between calls", async () => {
    const s = setup();
    const a: HandlerContext = s.ctx("getToken", ORDERS);
    const b: HandlerContext = s.ctx("getToken", OPS);
    await s.token.getToken(get(), a);
    await s.token.getToken(get(), b);
    expect([a.values.get(clientKey), b.values.get(clientKey)]).toEqual(["orders-service", "ops"]);
    expect(s.ctx("getToken").values.get(clientKey)).toBeUndefined();
  });
});
