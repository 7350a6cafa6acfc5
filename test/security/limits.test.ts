import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  AdminService,
  ForceRefreshRequestSchema,
} from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  GetTokenRequestSchema,
  InvalidateTokenRequestSchema,
  TokenKind,
  TokenService,
  WatchTokenRequestSchema,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { rpcInterceptors } from "../../src/rpc/interceptors/index.js";
import type { SecurityPolicy } from "../../src/security/index.js";
import { TokenBucket } from "../../src/shared/token-bucket.js";
import { FakeClock, flushMicrotasks } from "../helpers/fake-clock.js";
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
} from "./helpers.js";

const ORDERS = { key: KEYS.orders } as const; // 2/s, burst 3, 2 watch streams
const OPS = { key: KEYS.ops } as const; // defaults: 50/s, burst 100, 20 streams

function setup(policy: SecurityPolicy = POLICY) {
  const audit = auditSink();
  const clock = new FakeClock();
  const tokens = fakeTokenService();
  const admin = fakeAdminService();
  const chain = rpcInterceptors({ policy, clock, audit: audit.logger });
  const token = served(TokenService, tokens.impl, chain);
  const adm = served(AdminService, admin.impl, chain);
  const getToken = (c: CallOptions = ORDERS) =>
    token.getToken(
      create(GetTokenRequestSchema, { appId: "shop", kind: TokenKind.ACCESS_TOKEN }),
      callContext(TokenService.method.getToken, c),
    );
  const invalidate = (c: CallOptions = ORDERS) =>
    token.invalidateToken(
      create(InvalidateTokenRequestSchema, {
        appId: "shop",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: "old",
      }),
      callContext(TokenService.method.invalidateToken, c),
    );
  /** Opens a WatchToken stream and reads its first message (which takes the slot). */
  const watch = async (c: CallOptions = ORDERS) => {
    const ctrl = new AbortController();
    const it = token
      .watchToken(
        create(WatchTokenRequestSchema, { appId: "shop", kind: TokenKind.ACCESS_TOKEN }),
        callContext(TokenService.method.watchToken, { ...c, signal: ctrl.signal }),
      )
      [Symbol.asyncIterator]();
    const first = await it.next();
    /** What the transport does when the client goes away: stops reading. */
    const cancel = () => {
      if (!it.return) throw new Error("a WatchToken stream must be closable");
      return it.return(undefined);
    };
    return { it, first, cancel, abort: (reason: unknown) => ctrl.abort(reason) };
  };
  return { audit, clock, tokens, admin, token, adm, getToken, invalidate, watch };
}

describe("rate limit (rule 4)", () => {
  it("allows the burst, then refuses with RESOURCE_EXHAUSTED and when to retry", async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) await s.getToken();
    const err = await refusal(() => s.getToken());
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toBe(
      "rate limit of 2/s exceeded for client 'orders-service'; retry after 500 ms",
    );
    expect(s.tokens.calls).toHaveLength(3);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({
        event: "rate_limited",
        client: "orders-service",
        method: "GetToken",
        app: "shop",
        code: "resource_exhausted",
      }),
    ]);
  });

  it("refills on the injected clock, exactly when it said", async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) await s.getToken();
    await s.clock.advance(499);
    expect((await refusal(() => s.getToken())).rawMessage).toMatch(/retry after 1 ms$/);
    await s.clock.advance(1);
    await s.getToken();
    expect((await refusal(() => s.getToken())).rawMessage).toMatch(/retry after 500 ms$/);
    await s.clock.advance(250);
    expect((await refusal(() => s.getToken())).rawMessage).toMatch(/retry after 250 ms$/);
  });

  it("refills up to the burst and no further", async () => {
    const s = setup();
    await s.getToken();
    await s.clock.advance(60_000);
    for (let i = 0; i < 3; i++) await s.getToken();
    await expect(refusal(() => s.getToken())).resolves.toBeInstanceOf(ConnectError);
  });

  it("gives InvalidateToken a bucket of its own (default 5/s, burst 20), apart from GetToken's", async () => {
    const s = setup();
    for (let i = 0; i < 20; i++) await s.invalidate();
    const err = await refusal(() => s.invalidate());
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toBe(
      "InvalidateToken rate limit of 5/s exceeded for client 'orders-service'; retry after 200 ms",
    );
    // GetToken's bucket (burst 3) is untouched by the reports, and the other way round.
    for (let i = 0; i < 3; i++) await s.getToken();
    await expect(refusal(() => s.getToken())).resolves.toBeInstanceOf(ConnectError);
    await s.clock.advance(200);
    await s.invalidate();
  });

  it("keeps one bucket per client, with the defaults of 50/s and a burst of 100", async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) await s.getToken();
    await expect(refusal(() => s.getToken())).resolves.toBeInstanceOf(ConnectError);
    for (let i = 0; i < 100; i++) await s.getToken(OPS);
    const err = await refusal(() => s.getToken(OPS));
    expect(err.rawMessage).toBe("rate limit of 50/s exceeded for client 'ops'; retry after 20 ms");
    // The same client through its certificate uses the same bucket.
    await expect(refusal(() => s.getToken({ tls: "ops.broker.internal" }))).resolves.toBeInstanceOf(
      ConnectError,
    );
  });

  it("does not count refused calls, streams or admin calls", async () => {
    const s = setup();
    // Refused before the limit: not counted.
    for (let i = 0; i < 5; i++) {
      await refusal(() =>
        s.token.getToken(
          create(GetTokenRequestSchema, { appId: "billing", kind: TokenKind.ACCESS_TOKEN }),
          callContext(TokenService.method.getToken, ORDERS),
        ),
      );
    }
    const stream = await s.watch();
    expect(stream.first.done).toBe(false);
    for (let i = 0; i < 3; i++) await s.getToken();
    await expect(refusal(() => s.getToken())).resolves.toBeInstanceOf(ConnectError);
    // Admin calls are not rate limited.
    for (let i = 0; i < 150; i++) {
      await s.adm.forceRefresh(
        create(ForceRefreshRequestSchema, { appId: "shop", reason: "drill" }),
        callContext(AdminService.method.forceRefresh, OPS),
      );
    }
    await stream.cancel();
  });

  it("token bucket: a clock stepping back refills nothing and does not stall", () => {
    const bucket = new TokenBucket(1, 1, 10_000);
    expect(bucket.take(10_000)).toBe(0);
    expect(bucket.take(5_000)).toBe(1000);
    expect(bucket.take(5_999)).toBe(1);
    expect(bucket.take(6_000)).toBe(0);
  });

  it("token bucket: fractional rates", () => {
    const bucket = new TokenBucket(0.5, 1, 0);
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(0)).toBe(2000);
    expect(bucket.take(1999)).toBe(1);
    expect(bucket.take(2000)).toBe(0);
    const tenth = new TokenBucket(10, 1, 0);
    expect(tenth.take(0)).toBe(0);
    for (let t = 10; t < 100; t += 10) expect(tenth.take(t)).toBeGreaterThan(0);
    expect(tenth.take(100)).toBe(0);
  });
});

describe("watch stream cap (rule 4)", () => {
  it("refuses a stream beyond the cap with RESOURCE_EXHAUSTED, before the handler runs", async () => {
    const s = setup();
    await s.watch();
    await s.watch();
    const err = await refusal(() => s.watch());
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toBe(
      "client 'orders-service' is at its limit of 2 concurrent WatchToken streams; close one before opening another",
    );
    expect(s.tokens.calls.filter((c) => c.method === "WatchToken")).toHaveLength(2);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({
        event: "stream_limited",
        client: "orders-service",
        method: "WatchToken",
      }),
    ]);
  });

  it("counts streams per client", async () => {
    const s = setup();
    await s.watch();
    await s.watch();
    const tickets: SecurityPolicy = {
      clients: [
        ...POLICY.clients,
        {
          id: "other",
          tlsIdentity: "other",
          apps: ["shop"],
          permissions: ["watch"],
          maxWatchStreams: 1,
        },
      ],
    };
    const t = setup(tickets);
    await t.watch();
    await t.watch();
    const other = await t.watch({ tls: "other" });
    expect(other.first.done).toBe(false);
    await expect(refusal(() => t.watch({ tls: "other" }))).resolves.toBeInstanceOf(ConnectError);
  });

  it("releases the slot when a stream completes", async () => {
    const s = setup();
    const a = await s.watch();
    await s.watch();
    const next = a.it.next();
    await flushMicrotasks();
    s.tokens.streams[0]?.end();
    expect((await next).done).toBe(true);
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
  });

  it("releases the slot when a stream fails", async () => {
    const s = setup();
    const a = await s.watch();
    await s.watch();
    const next = a.it.next();
    await flushMicrotasks();
    const boom = new ConnectError("store unavailable", Code.Unavailable);
    s.tokens.streams[0]?.fail(boom);
    await expect(next).rejects.toBe(boom);
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
  });

  it("releases the slot when the client cancels (signal aborted)", async () => {
    const s = setup();
    const a = await s.watch();
    await s.watch();
    const next = a.it.next();
    await flushMicrotasks();
    const canceled = new ConnectError("the client canceled the call", Code.Canceled);
    a.abort(canceled);
    await expect(next).rejects.toBe(canceled);
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
  });

  it("releases the slot when the transport stops reading (return)", async () => {
    const s = setup();
    const a = await s.watch();
    await s.watch();
    expect(await a.cancel()).toEqual({ done: true, value: undefined });
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
  });

  it("takes no slot for a refused stream, nor releases one twice", async () => {
    const s = setup();
    const a = await s.watch();
    for (let i = 0; i < 3; i++) {
      await refusal(async () => {
        const it = s.token
          .watchToken(
            create(WatchTokenRequestSchema, { appId: "billing", kind: TokenKind.ACCESS_TOKEN }),
            callContext(TokenService.method.watchToken, ORDERS),
          )
          [Symbol.asyncIterator]();
        await it.next();
      });
    }
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
    await a.cancel();
    await a.cancel();
    await s.watch();
    await expect(refusal(() => s.watch())).resolves.toBeInstanceOf(ConnectError);
  });

  it("takes no slot for a stream that is never read", async () => {
    const s = setup();
    for (let i = 0; i < 5; i++) {
      s.token.watchToken(
        create(WatchTokenRequestSchema, { appId: "shop", kind: TokenKind.ACCESS_TOKEN }),
        callContext(TokenService.method.watchToken, ORDERS),
      );
    }
    await s.watch();
    await s.watch();
  });

  it("allows no streams with maxWatchStreams 0", async () => {
    const s = setup({
      clients: [
        {
          id: "poller",
          tlsIdentity: "p",
          apps: ["*"],
          permissions: ["get", "watch"],
          maxWatchStreams: 0,
        },
      ],
    });
    const err = await refusal(() => s.watch({ tls: "p" }));
    expect(err.rawMessage).toBe(
      "client 'poller' is at its limit of 0 concurrent WatchToken streams; close one before opening another",
    );
  });
});
