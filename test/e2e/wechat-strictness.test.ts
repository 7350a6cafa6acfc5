import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * The whole broker over gRPC against the emulator, where WeChat is stricter
 * than a broker might assume (issue 9, items 17 and 24).
 */

const STABLE = {
  id: "leaky",
  appid: "wx00000000000000l2",
  secret: "leaky-secret-strict-0000",
  tokenMode: "stable" as const,
};
const CLASSIC = { id: "shop", appid: "wx00000000000000s2", secret: "shop-secret-strict-0000" };
const STABLE_PATH = "/cgi-bin/stable_token";
const TICKET_PATH = "/cgi-bin/ticket/getticket";

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start() {
  const clock = new FakeClock();
  h = await startBrokerHarness([STABLE, CLASSIC], 1000, { clock });
  return {
    clock,
    harness: h,
    admin: createGrpcJsClient(AdminService, h.grpcAddress),
    tokens: createGrpcJsClient(TokenService, h.grpcAddress),
  };
}

const codeOf = (e: unknown) => (e as { code: number }).code;
const detailsOf = (e: unknown) => (e as { details: string }).details;

/** Polls (real time, generous bound) until `check` holds. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("45009 on a force refresh (§12 C2)", () => {
  it("blocks forcing only: normal stable_token refreshes go on", async () => {
    const { clock, harness, admin, tokens } = await start();
    const first = (await tokens.getToken({ appId: "leaky", kind: TokenKind.ACCESS_TOKEN })).token;
    expect(first?.version).toBe(1n);
    // Another party used the account's 20 forces today: WeChat answers 45009.
    harness.emulator.control.setDailyLimit(STABLE.appid, `${STABLE_PATH}#force`, 0);

    const refused = await admin
      .forceRefresh({ appId: "leaky", reason: "INC-9 leak drill" })
      .catch((e: unknown) => e);
    expect(codeOf(refused)).toBe(Code.ResourceExhausted);
    expect(detailsOf(refused)).toContain("45009");
    expect(harness.emulator.control.callCount(STABLE_PATH)).toBe(2);

    const status = await admin.getStatus({ appId: "leaky" });
    const quota = (endpoint: string) => status.quotas.find((q) => q.endpoint === endpoint);
    expect(quota("force_refresh")?.blockedUntil).toBeDefined();
    expect(quota(STABLE_PATH)?.blockedUntil).toBeUndefined();
    expect(status.credentials[0]?.refreshOverdue).toBe(false);
    expect(status.credentials[0]?.lastError).toBe("");

    // Forcing stays blocked without asking WeChat again.
    await clock.advance(31_000);
    const again = await admin
      .forceRefresh({ appId: "leaky", reason: "second try" })
      .catch((e: unknown) => e);
    expect(codeOf(again)).toBe(Code.ResourceExhausted);
    expect(harness.emulator.control.callCount(STABLE_PATH)).toBe(2);

    // The scheduled normal-mode refresh in the token's last 5 minutes still runs.
    await clock.advance(7200_000 - 200_000 - 31_000);
    await eventually(
      async () =>
        (await tokens.getToken({ appId: "leaky", kind: TokenKind.ACCESS_TOKEN })).token?.version ===
        2n,
      "the scheduled stable_token refresh stored version 2",
    );
    expect(harness.emulator.control.callCount(STABLE_PATH)).toBe(3);
  });
});

describe("apps[].kinds (not every official account has card permission)", () => {
  it("a kind the app does not offer is FAILED_PRECONDITION saying how to enable it; WeChat is not called", async () => {
    h = await startBrokerHarness([{ ...CLASSIC, kinds: ["access_token", "jsapi_ticket"] }], 1000, {
      clock: new FakeClock(),
    });
    const tokens = createGrpcJsClient(TokenService, h.grpcAddress);
    const err = await tokens
      .getToken({ appId: "shop", kind: TokenKind.WX_CARD_TICKET })
      .catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.FailedPrecondition);
    expect(detailsOf(err)).toContain("does not offer wx_card_ticket");
    expect(detailsOf(err)).toContain("add wx_card_ticket there");
    expect(h.emulator.control.callCount(TICKET_PATH)).toBe(0);
    expect(h.emulator.control.callCount("/cgi-bin/token")).toBe(0);
    await tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    expect(h.emulator.control.callCount(TICKET_PATH)).toBe(1);
  });
});

describe("the emulator's IP whitelist (40164) and getticket metering", () => {
  it("40164: FAILED_PRECONDITION naming the IP whitelist, one call to WeChat", async () => {
    const { harness, tokens } = await start();
    harness.emulator.control.setIpWhitelist(CLASSIC.appid, ["203.0.113.9"]);
    const err = await tokens
      .getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN })
      .catch((e: unknown) => e);
    expect(codeOf(err)).toBe(Code.FailedPrecondition);
    expect(detailsOf(err)).toContain("errcode 40164");
    expect(detailsOf(err)).toContain("IP whitelist");
    expect(harness.emulator.control.callCount("/cgi-bin/token", CLASSIC.appid)).toBe(1);
    expect(harness.emulator.control.counters()["/cgi-bin/token"]?.[CLASSIC.appid]?.errors).toEqual({
      "40164": 1,
    });
  });

  it("getticket calls are counted by the emulator's quota and counters and by the broker's ledger", async () => {
    const { harness, admin, tokens } = await start();
    for (const kind of [TokenKind.JSAPI_TICKET, TokenKind.WX_CARD_TICKET, TokenKind.JSAPI_TICKET]) {
      await tokens.getToken({ appId: "shop", kind });
    }
    expect(harness.emulator.control.callCount(TICKET_PATH, CLASSIC.appid)).toBe(2);
    expect(harness.emulator.control.quota(CLASSIC.appid)[TICKET_PATH].used).toBe(2);
    const status = await admin.getStatus({ appId: "shop" });
    expect(status.quotas.find((q) => q.endpoint === TICKET_PATH)?.used).toBe(2n);
  });
});
