import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * A classic token dies 300 s after the broker's next fetch of /cgi-bin/token
 * (facts R7), long before its own 7200 s are up. What clients are told of its
 * end must be when WeChat really stops accepting it (issue 9 item 18, §12 C3).
 */

const CLASSIC = { id: "shop", appid: "wx00000000000000e1", secret: "shop-secret-expiry-0000" };
const STABLE = {
  id: "steady",
  appid: "wx00000000000000e2",
  secret: "steady-secret-expiry-00",
  tokenMode: "stable" as const,
};
const OVERLAP_MS = 300_000;
const STEP_MS = 120_000;

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Waits (real time, generous bound) for refreshes the last clock step started. */
async function quiet(harness: BrokerHarness): Promise<void> {
  const deadline = Date.now() + 10_000;
  do {
    await new Promise((r) => setTimeout(r, 1));
    if (Date.now() > deadline) throw new Error("a refresh did not finish within 10 s");
  } while (harness.broker.manager.refreshing);
}

describe("expires_at / expires_in of a classic token", () => {
  it("over a simulated day, is never later than 300 s after the broker rotates it, and WeChat accepts it until then", async () => {
    const clock = new FakeClock();
    h = await startBrokerHarness([CLASSIC, STABLE], 1000, { clock });
    const harness = h;
    const tokens = createGrpcJsClient(TokenService, harness.grpcAddress);
    const get = async (appId: string) => {
      const token = (await tokens.getToken({ appId, kind: TokenKind.ACCESS_TOKEN })).token;
      if (!token?.expiresAt || !token.fetchedAt) throw new Error("no token");
      return {
        value: token.value,
        expiresAt: timestampMs(token.expiresAt),
        expiresIn: Number(token.expiresIn),
        fetchedAt: timestampMs(token.fetchedAt),
      };
    };

    /** Latest reported end per token value, and when the next one replaced it. */
    const reported = new Map<string, number>();
    const replacedAt = new Map<string, number>();
    let current: string | undefined;
    const end = clock.now() + 24 * 3_600_000;
    let checks = 0;
    for (;;) {
      const now = clock.now();
      const t = await get(CLASSIC.id);
      expect(t.expiresIn).toBe(Math.floor((t.expiresAt - now) / 1000));
      expect(t.expiresAt).toBeLessThanOrEqual(t.fetchedAt + 7200_000);
      if (t.value !== current) {
        if (current !== undefined) replacedAt.set(current, t.fetchedAt);
        current = t.value;
      }
      reported.set(t.value, t.expiresAt);
      // Every token still inside what it was reported to live is accepted by WeChat.
      for (const [value, until] of reported) {
        if (now >= until) continue;
        expect(harness.emulator.control.checkToken(value).valid).toBe(true);
        checks++;
      }
      // The stable token is not cut short: its expiry stands.
      if (checks % 10 === 0) {
        const stable = await get(STABLE.id);
        expect(stable.expiresAt).toBe(stable.fetchedAt + 7200_000);
      }
      if (now >= end) break;
      await clock.advance(STEP_MS);
      await quiet(harness);
    }

    // 13 rotations (every 109-110 min), each token reported to end no later than
    // 300 s after the broker replaced it, i.e. never at its nominal 7200 s.
    expect(replacedAt.size).toBeGreaterThanOrEqual(12);
    for (const [value, at] of replacedAt) {
      expect(reported.get(value)).toBeLessThanOrEqual(at + OVERLAP_MS);
    }
    expect(checks).toBeGreaterThan(24 * 30);
  }, 180_000); // 720 steps over gRPC; slow only on a loaded machine
});
