import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { startBrokerHarness } from "../helpers/broker-harness.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

const APP = { id: "demo", appid: "wx00000000000000d1", secret: "demo-secret-000000000" };

describe("graceful shutdown of the whole broker", () => {
  it("flips health to NOT_SERVING, ends open WatchToken streams on both ports with UNAVAILABLE, and stops", async () => {
    // A grace period far longer than the test may run: streams ending after it would time the test out.
    const h = await startBrokerHarness([APP], 120_000);
    const grpcClient = createGrpcJsClient(TokenService, h.grpcAddress);
    const health = createGrpcJsClient(Health, h.grpcAddress);
    const connectClient = createClient(
      TokenService,
      createConnectTransport({ baseUrl: h.broker.connect.url, httpVersion: "2" }),
    );

    const statuses: HealthCheckResponse_ServingStatus[] = [];
    const healthDone = (async () => {
      try {
        for await (const m of health.watch({ service: "tokenbroker.v1.TokenService" }))
          statuses.push(m.status);
      } catch {
        // ends with the server
      }
    })();
    const received = { grpc: 0, connect: 0 };
    const outcome = async (
      which: keyof typeof received,
      stream: AsyncIterable<unknown>,
      codeOf: (e: unknown) => number,
    ) => {
      try {
        for await (const _ of stream) received[which]++;
        return { messages: received[which], code: 0 };
      } catch (err) {
        return { messages: received[which], code: codeOf(err) };
      }
    };
    const grpcWatch = outcome(
      "grpc",
      grpcClient.watchToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN }),
      (e) => (e as { code: number }).code,
    );
    const connectWatch = outcome(
      "connect",
      connectClient.watchToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN }),
      (e) => ConnectError.from(e).code,
    );
    // Both clients hold their first message: the streams are open end to end.
    await expect.poll(() => received).toEqual({ grpc: 1, connect: 1 });
    await expect.poll(() => statuses).toEqual([HealthCheckResponse_ServingStatus.SERVING]);

    const started = Date.now();
    await h.close();
    // Streams ended at once, not after the grace period (a margin no machine load reaches).
    expect(Date.now() - started).toBeLessThan(30_000);

    expect(await grpcWatch).toEqual({ messages: 1, code: Code.Unavailable });
    expect(await connectWatch).toEqual({ messages: 1, code: Code.Unavailable });
    await healthDone;
    expect(statuses).toContain(HealthCheckResponse_ServingStatus.NOT_SERVING);
    const after = await connectClient
      .getToken({ appId: "demo", kind: TokenKind.ACCESS_TOKEN })
      .catch((e: unknown) => e);
    expect(ConnectError.from(after).code).toBe(Code.Unavailable);
    grpcClient.close();
    health.close();
  });
});
