import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * shutdown.preStopDelayMs (issue 14): on close, health answers NOT_SERVING at
 * once while calls and WatchToken streams are still served for the delay, so
 * Kubernetes endpoints and balancers drop the replica before its listeners go.
 */

const APP = { id: "shop", appid: "wx00000000000000p5", secret: "shop-secret-prestop-00" };
const DELAY_MS = 15_000;
const UNAVAILABLE = 14;

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 5));
};

describe("the pre-stop delay", () => {
  it("answers NOT_SERVING during the delay while GetToken and open streams are served, then closes", async () => {
    const clock = new FakeClock();
    h = await startBrokerHarness([APP], 1000, {
      clock,
      config: { shutdown: { graceMs: 1000, preStopDelayMs: DELAY_MS } },
    });
    const tokens = createGrpcJsClient(TokenService, h.grpcAddress);
    const health = createGrpcJsClient(Health, h.grpcAddress);
    const service = "tokenbroker.v1.TokenService";
    expect((await health.check({ service })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );

    const stream = tokens.watchToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.token?.version).toBe(1n);
    let streamEnd: { code: number } | undefined;
    void iterator.next().then(
      () => {
        streamEnd = { code: 0 };
      },
      (err: { code: number }) => {
        streamEnd = { code: err.code };
      },
    );

    let closed = false;
    const closing = h.broker.close().then(() => {
      closed = true;
    });
    await turns();
    // Draining: health says so at once, on both services and the server as a whole.
    expect((await health.check({ service })).status).toBe(
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    );
    expect((await health.check({ service: "" })).status).toBe(
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    );
    // ...while calls are still answered and the open stream stays open.
    const during = await tokens.getToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN });
    expect(during.token?.version).toBe(1n);
    await clock.advance(DELAY_MS - 1);
    await turns();
    expect(closed).toBe(false);
    expect(streamEnd).toBeUndefined();
    expect(
      (await tokens.getToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN })).token,
    ).toBeDefined();

    // The delay over, the listeners close: the stream ends with UNAVAILABLE (reconnect elsewhere).
    await clock.advance(1);
    await closing;
    expect(closed).toBe(true);
    await expect.poll(() => streamEnd).toEqual({ code: UNAVAILABLE });
    const after = await tokens
      .getToken({ appId: APP.id, kind: TokenKind.ACCESS_TOKEN })
      .catch((e: { code: number }) => e);
    expect((after as { code: number }).code).toBe(UNAVAILABLE);
    tokens.close();
    health.close();
  });

  it("is off by default: close does not wait", async () => {
    const clock = new FakeClock();
    h = await startBrokerHarness([APP], 1000, { clock });
    // The fake clock never moves here: any delay would keep close() from resolving.
    await expect(h.broker.close()).resolves.toBeUndefined();
  });
});
