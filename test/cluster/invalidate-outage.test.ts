import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createGrpcJsClient, type GrpcJsClient } from "../helpers/grpc-js-client.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";

// InvalidateToken while the shared store is unreachable (README, "Redis is unreachable"):
// a report of this replica's current value refreshes it without the lock (degraded),
// a report of anything else is answered with what the replica holds, and when
// nothing can be done the caller gets UNAVAILABLE, never INTERNAL.

const TOKEN = "/cgi-bin/token";
const APP = { id: "shop", appid: "wx00000000000io001", secret: "outage-secret-0123" };
const req = { appId: "shop", kind: TokenKind.ACCESS_TOKEN };

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

describe("InvalidateToken while Redis is down, over gRPC", () => {
  let h: BrokerHarness;
  let client: GrpcJsClient<typeof TokenService>;
  let prefix: string;
  beforeEach(async () => {
    if (!redis.running) await redis.start();
    prefix = `io-${randomUUID().slice(0, 8)}`;
    h = await startBrokerHarness([APP], 2000, {
      config: {
        store: { type: "redis", url: redis.url, prefix },
      },
    });
    client = createGrpcJsClient(TokenService, h.grpcAddress);
  });
  afterEach(async () => {
    client.close();
    if (!redis.running) await redis.start();
    await h.close();
  });

  it("a report of this replica's current token refreshes it without the lock; a report of an older one is answered from memory", async () => {
    const first = (await client.getToken(req)).token?.value ?? "";
    expect(h.emulator.control.callCount(TOKEN)).toBe(1);
    await redis.stop("SIGKILL");

    const res = await client.invalidateToken(
      { ...req, rejectedValue: first, errcode: 40001 },
      { timeoutMs: 15_000 },
    );
    expect(res.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(res.token?.value).not.toBe(first);
    expect(Number(res.token?.version)).toBe(2);
    expect(h.emulator.control.checkToken(res.token?.value ?? "").valid).toBe(true);
    expect(h.emulator.control.callCount(TOKEN)).toBe(2);
    // This replica now serves it...
    expect((await client.getToken(req)).token?.value).toBe(res.token?.value);
    // ...and a late report of the replaced value is answered with it, without a fetch.
    const late = await client.invalidateToken(
      { ...req, rejectedValue: first, errcode: 40001 },
      { timeoutMs: 15_000 },
    );
    expect(late.outcome).toBe(InvalidateOutcome.ALREADY_REPLACED);
    expect(late.token?.value).toBe(res.token?.value);
    expect(h.emulator.control.callCount(TOKEN)).toBe(2);

    // Redis returns: the replica hands its copy back and keeps serving it.
    await redis.start();
    const admin = new Redis(redis.url, { lazyConnect: true });
    try {
      await expect
        .poll(() => admin.hget(`${prefix}:{shop/access_token}:cred`, "version"), {
          timeout: 15_000,
        })
        .toBe("2");
    } finally {
      admin.disconnect();
    }
    const back = await client.invalidateToken(
      { ...req, rejectedValue: first, errcode: 40001 },
      { timeoutMs: 15_000 },
    );
    expect(back.outcome).toBe(InvalidateOutcome.ALREADY_REPLACED);
    expect(back.token?.value).toBe(res.token?.value);
  }, 60_000);

  it("with nothing held and WeChat failing too, the caller gets UNAVAILABLE with advice, not INTERNAL", async () => {
    await redis.stop("SIGKILL");
    h.emulator.control.injectFault({ endpoint: TOKEN, action: { type: "http", status: 503 } });
    const err = await client
      .invalidateToken(
        { ...req, rejectedValue: "some-token-the-client-had", errcode: 40001 },
        { timeoutMs: 15_000 },
      )
      .then(
        () => undefined,
        (e: unknown) => e as { code?: number; details?: string },
      );
    expect(err?.code).toBe(14); // UNAVAILABLE
    expect(err?.details).toMatch(/retry/);
  }, 60_000);
});
