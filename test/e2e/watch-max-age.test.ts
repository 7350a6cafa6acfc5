import { afterEach, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * WatchToken streams end on their own after a jittered maximum age with
 * UNAVAILABLE, so reconnecting clients spread over replicas added since
 * (gRPC's MAX_CONNECTION_AGE, per stream).
 */

const APP = { id: "shop", appid: "wx00000000000000a9", secret: "shop-secret-age-000000" };
const UNAVAILABLE = 14;
const STREAMS = 20;

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("the maximum age of a WatchToken stream", () => {
  it("ends every stream with UNAVAILABLE between 54 and 66 s for 60 s ± 10 %, at spread times, and a new stream gets the current token first", async () => {
    const clock = new FakeClock();
    h = await startBrokerHarness([APP], 1000, {
      clock,
      config: { watch: { maxStreamAgeSeconds: 60, maxStreamAgeJitter: 0.1 } },
    });
    const tokens = createGrpcJsClient(TokenService, h.grpcAddress);
    const opened = clock.now();
    const ended = new Map<number, { at: number; code: number; message: string }>();
    const firsts: bigint[] = [];
    await Promise.all(
      Array.from({ length: STREAMS }, async (_, i) => {
        const stream = tokens.watchToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN });
        const iterator = stream[Symbol.asyncIterator]();
        const first = await iterator.next();
        firsts.push(first.value?.token?.version ?? 0n);
        void iterator.next().then(
          () => ended.set(i, { at: clock.now(), code: 0, message: "ended without an error" }),
          (err: { code: number; details: string }) =>
            ended.set(i, { at: clock.now(), code: err.code, message: err.details }),
        );
      }),
    );
    expect(firsts).toEqual(Array(STREAMS).fill(1n));

    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    };
    await clock.advance(53_000);
    await settle();
    expect(ended.size).toBe(0);
    for (let s = 54; s <= 67; s++) {
      await clock.advance(opened + s * 1000 - clock.now());
      await settle();
    }
    const deadline = Date.now() + 5000;
    while (ended.size < STREAMS && Date.now() < deadline) await settle();
    expect(ended.size).toBe(STREAMS);
    for (const e of ended.values()) {
      expect(e.code).toBe(UNAVAILABLE);
      expect(e.message).toMatch(/maximum age.*reconnect/);
      expect(e.at - opened).toBeGreaterThanOrEqual(54_000);
      expect(e.at - opened).toBeLessThanOrEqual(67_000);
    }
    // Jittered: the streams do not all end in the same second.
    expect(new Set([...ended.values()].map((e) => Math.floor(e.at / 1000))).size).toBeGreaterThan(
      1,
    );

    // Reconnecting gets the current credential first.
    const again = tokens.watchToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN });
    const iterator = again[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.token?.version).toBe(1n);
    await iterator.return?.();
    tokens.close();
  }, 60_000);
});
