import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { REFUSAL_WINDOW_MS } from "../../src/security/refusal-log.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { logSink } from "../helpers/log-sink.js";

const LEAKY = {
  id: "leaky",
  appid: "wx00000000000000l1",
  secret: "leaky-secret-0000000",
  tokenMode: "stable" as const,
};
const OPS_KEY = "ops-key-audit-5b1e0c7d9a";
/** 60 KB: under the 64 KB request cap, so every request reaches the guard. */
const HUGE_APP_ID = "A".repeat(60 * 1024);

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(security: Record<string, unknown>) {
  const audit = logSink();
  const clock = new FakeClock();
  h = await startBrokerHarness([LEAKY], 500, {
    clock,
    audit: audit.logger,
    config: {
      security: {
        clients: [
          {
            id: "ops",
            apiKeySha256: hashApiKey(OPS_KEY),
            apps: ["*"],
            permissions: ["get", "admin"],
          },
        ],
        ...security,
      },
    },
  });
  return { audit, clock, h };
}

/** Sends `n` GetTokens with a 60 KB app_id and no key; resolves with their status codes. */
async function flood(address: string, n: number): Promise<number[]> {
  const client = createGrpcJsClient(TokenService, address);
  const codes: number[] = [];
  try {
    for (let sent = 0; sent < n; sent += 50) {
      const batch = Array.from({ length: Math.min(50, n - sent) }, () =>
        client.getToken({ appId: HUGE_APP_ID, kind: TokenKind.ACCESS_TOKEN }).then(
          () => 0, // OK
          (e: { code: number }) => e.code,
        ),
      );
      codes.push(...(await Promise.all(batch)));
    }
  } finally {
    client.close();
  }
  return codes;
}

describe("audit volume under a refusal flood (issue 9 item 5)", () => {
  it("500 unauthenticated 60 KB requests write one line and one count, not 30 MB", async () => {
    const { audit, clock, h } = await start({});
    const codes = await flood(h.grpcAddress, 500);
    expect(new Set(codes)).toEqual(new Set([Code.Unauthenticated]));
    expect(audit.lines()).toEqual([
      expect.objectContaining({
        event: "auth_failure",
        method: "GetToken",
        app: expect.stringMatching(/^\(invalid app_id: 61440 chars, fingerprint [0-9a-f]{12}\)$/),
      }),
    ]);
    await clock.advance(REFUSAL_WINDOW_MS);
    expect(audit.lines()[1]).toMatchObject({
      event: "auth_failure",
      method: "GetToken",
      repeated: 499,
    });
    expect(audit.lines()).toHaveLength(2);
    expect(audit.text().length).toBeLessThan(2000);
    expect(audit.text()).not.toContain("A".repeat(32));
  });

  it("refusals from outside the allowlist stay bounded too", async () => {
    const { audit, clock, h } = await start({ allowCidrs: ["10.0.0.0/8"] });
    const codes = await flood(h.grpcAddress, 500);
    expect(codes).not.toContain(0);
    await clock.advance(REFUSAL_WINDOW_MS);
    expect(audit.text().length).toBeLessThan(4000);
    expect(audit.text()).not.toContain("A".repeat(32));
  });

  it("a ForceRefresh reason is bounded and a token in it is written only as its fingerprint", async () => {
    const { audit, h } = await start({});
    const metadata = { authorization: `Bearer ${OPS_KEY}` };
    const tokens = createGrpcJsClient(TokenService, h.grpcAddress);
    const admin = createGrpcJsClient(AdminService, h.grpcAddress);
    try {
      const leaked = (
        await tokens.getToken({ appId: "leaky", kind: TokenKind.ACCESS_TOKEN }, { metadata })
      ).token;
      const value = leaked?.value ?? "";
      expect(value.length).toBeGreaterThan(64);

      const tooLong = await admin
        .forceRefresh({ appId: "leaky", reason: "r".repeat(201) }, { metadata })
        .catch((e: { code: number; details: string }) => e);
      expect(tooLong).toMatchObject({ code: Code.InvalidArgument });
      expect((tooLong as { details: string }).details).toMatch(/reason is required \(1-200/);

      await admin.forceRefresh(
        { appId: "leaky", reason: `leaked: ${value} (INC-7)` },
        { metadata },
      );
      const record = audit.lines().find((l) => l.event === "force_refresh");
      expect(record).toMatchObject({
        reason: `leaked: [masked: ${value.length} chars, fingerprint ${leaked?.fingerprint}] (INC-7)`,
        outcome: "ok",
      });
      expect(audit.text()).not.toContain(value);
      expect(audit.text()).not.toContain(value.slice(0, 40));
    } finally {
      tokens.close();
      admin.close();
    }
  });
});
