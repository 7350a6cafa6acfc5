import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { type Token, TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * `Token.refresh_after` is when the broker replaces the credential, so a
 * client cache can follow the broker's schedule instead of a margin of its
 * own: before it, the broker serves the same version; from it on, a new one.
 */

const CLASSIC = { id: "shop", appid: "wx00000000000000f1", secret: "shop-secret-after-0000" };
const STABLE = {
  id: "steady",
  appid: "wx00000000000000f2",
  secret: "steady-secret-after-00",
  tokenMode: "stable" as const,
};
const OVERLAP_MS = 300_000;

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function quiet(harness: BrokerHarness): Promise<void> {
  const deadline = Date.now() + 10_000;
  do {
    await new Promise((r) => setTimeout(r, 1));
    if (Date.now() > deadline) throw new Error("a refresh did not finish within 10 s");
  } while (harness.broker.manager.refreshing);
}

function times(token: Token | undefined) {
  if (!token?.refreshAfter || !token.expiresAt || !token.fetchedAt)
    throw new Error("a token without refresh_after, expires_at or fetched_at");
  return {
    version: token.version,
    refreshAfter: timestampMs(token.refreshAfter),
    expiresAt: timestampMs(token.expiresAt),
    fetchedAt: timestampMs(token.fetchedAt),
  };
}

describe("refresh_after", () => {
  it("is when the broker replaces each kind: the same version before it, a new one from it on; GetToken and WatchToken agree", async () => {
    const clock = new FakeClock();
    // The stream lives through the simulated hours up to refresh_after.
    h = await startBrokerHarness([CLASSIC, STABLE], 1000, {
      clock,
      config: { watch: { maxStreamAgeSeconds: 86_400 } },
    });
    const harness = h;
    const tokens = createGrpcJsClient(TokenService, harness.grpcAddress);
    const get = async (appId: string, kind = TokenKind.ACCESS_TOKEN) =>
      times((await tokens.getToken({ appId, kind })).token);

    const classic = await get(CLASSIC.id);
    const stable = await get(STABLE.id);
    const ticket = await get(CLASSIC.id, TokenKind.JSAPI_TICKET);
    const now = clock.now();

    // A classic token is replaced well before its 7200 s, and dies 300 s after that.
    expect(classic.refreshAfter).toBeGreaterThan(now);
    expect(classic.refreshAfter).toBeLessThan(classic.fetchedAt + 7200_000 - 300_000);
    expect(classic.expiresAt).toBe(classic.refreshAfter + OVERLAP_MS);
    // A stable token only inside WeChat's last 300 s, where a fetch really rotates it.
    expect(stable.refreshAfter).toBeGreaterThanOrEqual(stable.expiresAt - OVERLAP_MS);
    expect(stable.refreshAfter).toBeLessThan(stable.expiresAt);
    // A ticket is re-issued only at its end: replaced in its last second.
    expect(ticket.refreshAfter).toBeGreaterThanOrEqual(ticket.expiresAt - 1000);
    expect(ticket.refreshAfter).toBeLessThan(ticket.expiresAt);

    // A stream's first message says the same.
    const cancel = new AbortController();
    const stream = tokens
      .watchToken({ appId: CLASSIC.id, kind: TokenKind.ACCESS_TOKEN }, { signal: cancel.signal })
      [Symbol.asyncIterator]();
    const first = await stream.next();
    expect(times(first.value?.token).refreshAfter).toBe(classic.refreshAfter);

    // Just before refresh_after: still the same version, with the same refresh_after.
    await clock.advance(classic.refreshAfter - clock.now() - 1000);
    await quiet(harness);
    const before = await get(CLASSIC.id);
    expect(before.version).toBe(classic.version);
    expect(before.refreshAfter).toBe(classic.refreshAfter);

    // At refresh_after the broker replaces it; the stream sends the new version.
    await clock.advance(1000);
    await quiet(harness);
    const after = await get(CLASSIC.id);
    expect(after.version).toBe(classic.version + 1n);
    expect(after.fetchedAt).toBe(classic.refreshAfter);
    expect(after.refreshAfter).toBeGreaterThan(clock.now());
    const pushed = await stream.next();
    expect(times(pushed.value?.token).version).toBe(after.version);
    expect(times(pushed.value?.token).refreshAfter).toBe(after.refreshAfter);
    cancel.abort();

    // The stable token likewise, at its own refresh_after.
    expect((await get(STABLE.id)).version).toBe(stable.version);
    await clock.advance(stable.refreshAfter - clock.now());
    await quiet(harness);
    const stableAfter = await get(STABLE.id);
    expect(stableAfter.version).toBe(stable.version + 1n);
    expect(stableAfter.refreshAfter).toBeGreaterThan(clock.now());
    tokens.close();
  }, 60_000);
});
