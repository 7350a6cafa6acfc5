import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/**
 * Applied-version feedback through the production broker: clients say which
 * version they switched to (AckToken); the broker counts, per credential,
 * those still on a replaced version as its 5-minute overlap runs out, in the
 * status and the metrics (counts only), and alerts before it stops working.
 */

const SHOP = { id: "shop", appid: "wx00000000000000k1", secret: "shop-secret-applied-00" };
const BILLING = { id: "billing", appid: "wx00000000000000k2", secret: "billing-secret-applied" };
const KEYS = {
  getter: "getter-key-0a1b2c3d4e",
  watcher: "watcher-key-5f6a7b8c9d",
  reporter: "reporter-key-0e1f2a3b",
  billing: "billing-key-4c5d6e7f8a",
  ops: "ops-key-9b0c1d2e3f4a",
};
const OVERLAP_MS = 300_000;
const ALERT = "clients_on_superseded_version";

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(clock: FakeClock) {
  h = await startBrokerHarness([SHOP, BILLING], 1000, {
    clock,
    config: {
      metrics: { listen: "127.0.0.1:0" },
      watch: { ackRenewSeconds: 30, supersededAlertLeadSeconds: 120 },
      security: {
        clients: [
          {
            id: "getter",
            apiKeySha256: hashApiKey(KEYS.getter),
            apps: ["shop"],
            permissions: ["get", "invalidate"],
          },
          {
            id: "watcher",
            apiKeySha256: hashApiKey(KEYS.watcher),
            apps: ["shop"],
            permissions: ["watch"],
          },
          {
            id: "reporter",
            apiKeySha256: hashApiKey(KEYS.reporter),
            apps: ["shop"],
            permissions: ["invalidate"],
          },
          {
            id: "billing-svc",
            apiKeySha256: hashApiKey(KEYS.billing),
            apps: ["billing"],
            permissions: ["get", "watch"],
          },
          { id: "ops", apiKeySha256: hashApiKey(KEYS.ops), apps: ["*"], permissions: ["admin"] },
        ],
      },
    },
  });
  const harness = h;
  const tokens = createGrpcJsClient(TokenService, harness.grpcAddress);
  const admin = createGrpcJsClient(AdminService, harness.grpcAddress);
  const as = (key: string) => ({ metadata: { authorization: `Bearer ${key}` } });
  const ack = (key: string, instance: string, version: bigint, appId = SHOP.id) =>
    tokens.ackToken({ appId, kind: TokenKind.ACCESS_TOKEN, version, instance }, as(key));
  const status = async () => {
    const s = await admin.getStatus({ appId: SHOP.id }, as(KEYS.ops));
    const credential = s.credentials.find((c) => c.kind === TokenKind.ACCESS_TOKEN);
    return { credential, alerts: s.alerts.filter((a) => a.name === ALERT) };
  };
  const scrape = async () => {
    const res = await fetch(`${harness.broker.metricsUrl}metrics`);
    return res.text();
  };
  return { harness, tokens, admin, as, ack, status, scrape };
}

const failure = (e: unknown) => ({
  code: (e as { code: number }).code,
  details: (e as { details: string }).details,
});

describe("applied-version feedback (AckToken)", () => {
  it("is refused without get or watch on the credential, and for malformed or unknown requests", async () => {
    const clock = new FakeClock();
    const { tokens, as, ack } = await start(clock);
    await tokens.getToken({ appId: SHOP.id, kind: TokenKind.ACCESS_TOKEN }, as(KEYS.getter));

    expect(await ack(KEYS.getter, "a", 1n)).toMatchObject({
      renewWithinSeconds: 30,
      currentVersion: 1n,
    });
    expect(await ack(KEYS.watcher, "a", 1n)).toMatchObject({ renewWithinSeconds: 30 });
    const reporter = failure(await ack(KEYS.reporter, "a", 1n).catch((e: unknown) => e));
    expect(reporter.code).toBe(Code.PermissionDenied);
    expect(reporter.details).toMatch(/does not have the 'watch' or 'get' permission/);
    const otherApp = failure(await ack(KEYS.billing, "a", 1n).catch((e: unknown) => e));
    expect(otherApp.code).toBe(Code.PermissionDenied);
    const noInstance = failure(await ack(KEYS.getter, "", 1n).catch((e: unknown) => e));
    expect(noInstance.code).toBe(Code.InvalidArgument);
    const badInstance = failure(await ack(KEYS.getter, "a b", 1n).catch((e: unknown) => e));
    expect(badInstance.code).toBe(Code.InvalidArgument);
    const noVersion = failure(await ack(KEYS.getter, "a", 0n).catch((e: unknown) => e));
    expect(noVersion.code).toBe(Code.InvalidArgument);
    const unknown = failure(
      await tokens
        .ackToken(
          { appId: "nope", kind: TokenKind.ACCESS_TOKEN, version: 1n, instance: "a" },
          as(KEYS.ops),
        )
        .catch((e: unknown) => e),
    );
    expect(unknown.code).toBe(Code.PermissionDenied); // ops has no get/watch
  });

  it("counts clients per version in status and metrics, alerts before the replaced version dies, resolves once they switch, and forgets silent ones", async () => {
    const clock = new FakeClock();
    const { harness, tokens, as, ack, status, scrape } = await start(clock);
    const v1 = (
      await tokens.getToken({ appId: SHOP.id, kind: TokenKind.ACCESS_TOKEN }, as(KEYS.getter))
    ).token;
    expect(v1?.version).toBe(1n);

    // Three instances: the same instance id under two clients counts twice.
    const holders: Array<[string, string]> = [
      [KEYS.getter, "pod-a"],
      [KEYS.getter, "pod-b"],
      [KEYS.watcher, "pod-a"],
    ];
    const versions = new Map<string, bigint>(holders.map(([k, i]) => [`${k}/${i}`, 1n]));
    const renewAll = () =>
      Promise.all(holders.map(([k, i]) => ack(k, i, versions.get(`${k}/${i}`) ?? 0n)));
    await renewAll();
    expect((await status()).credential).toMatchObject({
      clientsCurrent: 3,
      clientsSuperseded: 0,
      supersededVersion: 0n,
    });
    expect((await status()).credential?.supersededValidUntil).toBeUndefined();

    // Rotation: WeChat rejected v1, the broker fetches v2; two instances switch.
    const invalidated = await tokens.invalidateToken(
      {
        appId: SHOP.id,
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: v1?.value ?? "",
        errcode: 40001,
      },
      as(KEYS.getter),
    );
    expect(invalidated.token?.version).toBe(2n);
    const rotatedAt = clock.now();
    versions.set(`${KEYS.getter}/pod-a`, 2n);
    versions.set(`${KEYS.watcher}/pod-a`, 2n);
    await renewAll();
    const after = await status();
    expect(after.credential).toMatchObject({
      version: 2n,
      clientsCurrent: 2,
      clientsSuperseded: 1,
      supersededVersion: 1n,
    });
    const until = after.credential?.supersededValidUntil;
    if (!until) throw new Error("no superseded_valid_until while a client is on v1");
    const validUntil = timestampMs(until);
    expect(validUntil).toBe(rotatedAt + OVERLAP_MS);
    // WeChat still takes v1 then (the overlap), and not after.
    expect(harness.emulator.control.checkToken(v1?.value ?? "").valid).toBe(true);

    // Metrics, counted on the next sample: counts by app and kind only.
    await clock.advance(15_000);
    await expect
      .poll(scrape)
      .toMatch(/tokenbroker_clients\{app="shop",kind="access_token",version="superseded"\} 1/);
    const text = await scrape();
    expect(text).toMatch(
      /tokenbroker_clients\{app="shop",kind="access_token",version="current"\} 2/,
    );
    expect(text).toMatch(
      /tokenbroker_superseded_remaining_seconds\{app="shop",kind="access_token"\} 28[0-9]/,
    );
    expect(text).not.toMatch(/pod-a|pod-b|getter|watcher/);

    // The alert fires once v1 has at most 120 s left (checked every 15 s),
    // before it dies, while the lagging instance keeps acknowledging v1.
    let firedAt: number | undefined;
    while (clock.now() < validUntil) {
      await clock.advance(15_000);
      await renewAll();
      const { alerts } = await status();
      if (alerts.length > 0) {
        firedAt = clock.now();
        expect(alerts[0]).toMatchObject({ appId: SHOP.id, severity: "warning" });
        expect(alerts[0]?.summary).toMatch(
          /1 client instance\(s\) of app 'shop' still use access_token version 1, replaced by version 2; it stops working in \d+ s/,
        );
        break;
      }
    }
    expect(firedAt).toBeDefined();
    expect(validUntil - (firedAt ?? 0)).toBeLessThanOrEqual(120_000);
    expect(validUntil - (firedAt ?? 0)).toBeGreaterThan(90_000);
    await expect
      .poll(scrape)
      .toMatch(/tokenbroker_alert_active\{alert="clients_on_superseded_version"\} 1/);

    // The lagging instance switches: the next count resolves the alert.
    versions.set(`${KEYS.getter}/pod-b`, 2n);
    await renewAll();
    await clock.advance(15_000);
    await expect.poll(async () => (await status()).alerts.length).toBe(0);
    expect((await status()).credential).toMatchObject({ clientsCurrent: 3, clientsSuperseded: 0 });

    // An instance that stops acknowledging is forgotten after three renewals (90 s).
    holders.pop();
    for (let t = 0; t < 90_000; t += 15_000) {
      await clock.advance(15_000);
      await renewAll();
    }
    await clock.advance(1);
    expect((await status()).credential).toMatchObject({ clientsCurrent: 2, clientsSuperseded: 0 });
  }, 60_000);
});
