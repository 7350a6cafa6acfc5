import { Writable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { fingerprint } from "../../src/shared/fingerprint.js";
import { createLogger } from "../../src/shared/logger.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient, type GrpcJsClient } from "../helpers/grpc-js-client.js";

// Reports over the gRPC port against the emulator's counters (issue 9, items 3, 4 and 22).
const SHOP = { id: "shop", appid: "wx00000000000000s1", secret: "shop-secret-000000000" };
const TOKEN = "/cgi-bin/token";
const KEYS = {
  looper: "looper-key-0a1b2c3d4e",
  reporter: "reporter-key-9f8e7d6c",
  reader: "reader-key-5a5a5a5a",
};
const ACCESS = { appId: "shop", kind: TokenKind.ACCESS_TOKEN };
const MINUTE = 60_000;

let h: BrokerHarness | undefined;
let client: GrpcJsClient<typeof TokenService> | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await h?.close();
  h = undefined;
});

async function start(config: Record<string, unknown> = {}, lines: Record<string, unknown>[] = []) {
  const clock = new FakeClock();
  const destination = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const l of chunk.toString().split("\n"))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  h = await startBrokerHarness([SHOP], 1000, {
    clock,
    logger: createLogger({ destination }),
    config: {
      security: {
        clients: [
          {
            id: "looper",
            apiKeySha256: hashApiKey(KEYS.looper),
            apps: ["shop"],
            permissions: ["get", "invalidate"],
            ratePerSecond: 1000,
            burst: 1000,
            invalidateRatePerSecond: 1000,
            invalidateBurst: 1000,
          },
          {
            id: "reporter",
            apiKeySha256: hashApiKey(KEYS.reporter),
            apps: ["shop"],
            permissions: ["invalidate"],
          },
          {
            id: "reader",
            apiKeySha256: hashApiKey(KEYS.reader),
            apps: ["shop"],
            permissions: ["get"],
          },
        ],
      },
      ...config,
    },
  });
  client = createGrpcJsClient(TokenService, h.grpcAddress);
  return { clock, emulator: h.emulator, tokens: client };
}

const as = (who: keyof typeof KEYS) => ({ metadata: { authorization: `Bearer ${KEYS[who]}` } });
const failure = (e: unknown) => ({
  code: (e as { code: number }).code,
  details: (e as { details: string }).details,
});

describe("InvalidateToken: report-driven refreshes are bounded (item 3)", () => {
  it("a client looping reports with the token it just got: the first refreshes at once, the rest of a burst of 3, then none until the refill", async () => {
    const { clock, emulator, tokens } = await start();
    let token = (await tokens.getToken(ACCESS, as("looper"))).token;
    expect(emulator.control.callCount(TOKEN)).toBe(1);

    // The first report about a seconds-old token still refreshes: someone may really have rotated it.
    await clock.advance(2000);
    const first = await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: token?.value ?? "", errcode: 40001 },
      as("looper"),
    );
    expect(first.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(first.token?.version).toBe(2n);
    expect(emulator.control.callCount(TOKEN)).toBe(2);
    token = first.token;

    const outcomes: InvalidateOutcome[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await tokens.invalidateToken(
        { ...ACCESS, rejectedValue: token?.value ?? "", errcode: 40001 },
        as("looper"),
      );
      outcomes.push(r.outcome);
      if (r.outcome === InvalidateOutcome.RATE_LIMITED) {
        // Not refreshed: the same, current token comes back.
        expect(r.token?.version).toBe(token?.version);
        expect(r.token?.value).toBe(token?.value);
        expect(r.refreshed).toBe(false);
      }
      token = r.token;
    }
    // Burst 3: two more refreshes after the first, then 198 reports and no fetch.
    expect(outcomes.filter((o) => o === InvalidateOutcome.REFRESHED)).toHaveLength(2);
    expect(outcomes.filter((o) => o === InvalidateOutcome.RATE_LIMITED)).toHaveLength(198);
    expect(emulator.control.callCount(TOKEN)).toBe(4);
    expect(token?.version).toBe(4n);

    // One refresh per 5 minutes after that.
    await clock.advance(5 * MINUTE);
    const refilled = await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: token?.value ?? "", errcode: 40001 },
      as("looper"),
    );
    expect(refilled.outcome).toBe(InvalidateOutcome.REFRESHED);
    const again = await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: refilled.token?.value ?? "", errcode: 40001 },
      as("looper"),
    );
    expect(again.outcome).toBe(InvalidateOutcome.RATE_LIMITED);
    expect(emulator.control.callCount(TOKEN)).toBe(5);
  });

  it("InvalidateToken has its own per-client rate limit, separate from GetToken's", async () => {
    const { tokens } = await start({
      security: {
        clients: [
          {
            id: "looper",
            apiKeySha256: hashApiKey(KEYS.looper),
            apps: ["shop"],
            permissions: ["get", "invalidate"],
            ratePerSecond: 1000,
            burst: 1000,
            invalidateRatePerSecond: 1,
            invalidateBurst: 5,
          },
        ],
      },
    });
    const token = (await tokens.getToken(ACCESS, as("looper"))).token;
    const stale = { ...ACCESS, rejectedValue: "not-the-current-token", errcode: 40001 };
    for (let i = 0; i < 5; i++) await tokens.invalidateToken(stale, as("looper"));
    const limited = await tokens.invalidateToken(stale, as("looper")).catch(failure);
    expect(limited).toMatchObject({
      code: Code.ResourceExhausted,
      details: expect.stringMatching(
        /InvalidateToken rate limit of 1\/s exceeded for client 'looper'/,
      ),
    });
    // GetToken's bucket is untouched by the reports.
    for (let i = 0; i < 50; i++) {
      expect((await tokens.getToken(ACCESS, as("looper"))).token?.version).toBe(token?.version);
    }
  });

  it("reports may not use the daily budget's reserve: once their share is used they answer RATE_LIMITED, and the scheduled refresh still fetches", async () => {
    const { clock, emulator, tokens } = await start({
      quota: { budgets: { [TOKEN]: 10 }, scheduledReserve: 0.2 },
      invalidate: { refreshBurst: 100 },
    });
    let token = (await tokens.getToken(ACCESS, as("looper"))).token;
    const outcomes: InvalidateOutcome[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await tokens.invalidateToken(
        { ...ACCESS, rejectedValue: token?.value ?? "", errcode: 40001 },
        as("looper"),
      );
      outcomes.push(r.outcome);
      token = r.token;
    }
    // 10 a day, 2 kept for scheduled refreshes: the cold fetch and 7 reports use the other 8.
    expect(outcomes.filter((o) => o === InvalidateOutcome.REFRESHED)).toHaveLength(7);
    expect(outcomes.slice(7).every((o) => o === InvalidateOutcome.RATE_LIMITED)).toBe(true);
    expect(emulator.control.callCount(TOKEN)).toBe(8);
    const before = token?.version ?? 0n;
    // Not a failure: the token is not reported overdue.
    expect((await tokens.getToken(ACCESS, as("looper"))).token?.refreshOverdue).toBe(false);

    // The scheduled refresh, before expiry, draws on the reserve.
    await clock.advance(7200_000 - 600_000);
    await vi.waitFor(
      async () => {
        const now = (await tokens.getToken(ACCESS, as("looper"))).token;
        expect(now?.version).toBe(before + 1n);
      },
      { timeout: 10_000 },
    );
    expect(emulator.control.callCount(TOKEN)).toBe(9);
  });

  it("the foreign-fetcher alert names the reporting client", async () => {
    const lines: Record<string, unknown>[] = [];
    const { clock, tokens } = await start({}, lines);
    const token = (await tokens.getToken(ACCESS, as("looper"))).token;
    await clock.advance(MINUTE);
    await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: token?.value ?? "", errcode: 40001 },
      as("looper"),
    );
    const active = h?.broker.observability.alerts
      .active()
      .find((a) => a.name === "foreign_token_fetcher");
    expect(active?.details.reportedBy).toBe("looper");
    expect(active?.summary).toContain("reported by client 'looper'");
  });
});

describe("InvalidateToken from a client without get (item 4)", () => {
  it("gets version, fingerprint and outcome but no value, and never causes a cold fetch", async () => {
    const { emulator, tokens } = await start();
    // Nothing stored: nothing to invalidate, and WeChat is not called.
    const cold = await tokens
      .invalidateToken({ ...ACCESS, rejectedValue: "some-token", errcode: 40001 }, as("reporter"))
      .catch(failure);
    expect(cold).toMatchObject({
      code: Code.FailedPrecondition,
      details: expect.stringMatching(/holds no access_token.*nothing to invalidate/),
    });
    expect(emulator.control.callCount(TOKEN)).toBe(0);

    const current = (await tokens.getToken(ACCESS, as("reader"))).token;
    expect(emulator.control.callCount(TOKEN)).toBe(1);
    const replaced = await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: "an-older-token", errcode: 40001 },
      as("reporter"),
    );
    expect(replaced.outcome).toBe(InvalidateOutcome.ALREADY_REPLACED);
    expect(replaced.token?.value).toBe("");
    expect(replaced.token?.version).toBe(1n);
    expect(replaced.token?.fingerprint).toBe(fingerprint(current?.value ?? ""));

    const refreshed = await tokens.invalidateToken(
      { ...ACCESS, rejectedValue: current?.value ?? "", errcode: 40001 },
      as("reporter"),
    );
    expect(refreshed.outcome).toBe(InvalidateOutcome.REFRESHED);
    expect(refreshed.token?.value).toBe("");
    expect(refreshed.token?.version).toBe(2n);
    const now = (await tokens.getToken(ACCESS, as("reader"))).token;
    expect(refreshed.token?.fingerprint).toBe(fingerprint(now?.value ?? ""));
    expect(emulator.control.callCount(TOKEN)).toBe(2);
  });
});

describe("InvalidateToken accepts only errcodes that mean the credential is stale (item 22)", () => {
  it("0, 40001, 42001 and 40014 refresh; any other errcode is INVALID_ARGUMENT and nothing is fetched", async () => {
    const { clock, emulator, tokens } = await start();
    let token = (await tokens.getToken(ACCESS, as("looper"))).token;
    for (const errcode of [45009, 40013, 48001, -1, 40125]) {
      const refused = await tokens
        .invalidateToken({ ...ACCESS, rejectedValue: token?.value ?? "", errcode }, as("looper"))
        .catch(failure);
      expect(refused).toMatchObject({
        code: Code.InvalidArgument,
        details: expect.stringMatching(
          new RegExp(
            `errcode ${errcode} does not mean the credential is stale.*40001, 42001, 40014, or 0`,
          ),
        ),
      });
    }
    expect(emulator.control.callCount(TOKEN)).toBe(1);
    for (const errcode of [0, 40001, 42001, 40014]) {
      await clock.advance(5 * MINUTE); // a fresh report budget each time
      const r = await tokens.invalidateToken(
        { ...ACCESS, rejectedValue: token?.value ?? "", errcode },
        as("looper"),
      );
      expect(r.outcome).toBe(InvalidateOutcome.REFRESHED);
      token = r.token;
    }
    expect(emulator.control.callCount(TOKEN)).toBe(5);
  });
});
