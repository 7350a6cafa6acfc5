import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../../src/emulated-broker.js";
import { hashApiKey } from "../../../src/security/index.js";
import { silentLogger } from "../../../src/shared/logger.js";
import { FakeClock } from "../../../test/helpers/fake-clock.js";
import { createGrpcJsClient } from "../../../test/helpers/grpc-js-client.js";
import {
  createTokenSource,
  type HeldToken,
  openTokenSource,
  type TokenSource,
  TokenUnavailableError,
} from "../src/index.js";

/**
 * The TokenSource against the production broker in front of the WeChat
 * emulator: the first token, following rotations over WatchToken, the
 * withToken retry after a real 40001 from the emulator, GetToken polling for
 * a client that may not stream, and serving the last good token until its
 * expiry while the broker cannot refresh, never after.
 */

const SHOP = { id: "shop", appid: "wx00000000000000t1", secret: "shop-secret-source-00" };
const KEYS = {
  full: "full-key-0123456789ab",
  getOnly: "get-only-key-0123456",
  ops: "ops-key-abcdef0123",
};

interface Harness extends EmulatedBroker {
  readonly grpcAddress: string;
}

let h: Harness | undefined;
const sources: TokenSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await h?.close();
  h = undefined;
});

async function start(clock?: FakeClock, watch?: Record<string, unknown>): Promise<Harness> {
  const b = await startEmulatedBroker(
    {
      apps: [SHOP],
      config: {
        upstream: { timeoutMs: 1000 },
        ...(watch ? { watch } : {}),
        security: {
          clients: [
            {
              id: "full",
              apiKeySha256: hashApiKey(KEYS.full),
              apps: ["shop"],
              permissions: ["get", "watch", "invalidate"],
            },
            {
              id: "get-only",
              apiKeySha256: hashApiKey(KEYS.getOnly),
              apps: ["shop"],
              permissions: ["get"],
            },
            { id: "ops", apiKeySha256: hashApiKey(KEYS.ops), apps: ["*"], permissions: ["admin"] },
          ],
        },
      },
    },
    { logger: silentLogger(), audit: silentLogger(), ...(clock ? { clock } : {}) },
  );
  h = { ...b, close: () => b.close(), grpcAddress: `127.0.0.1:${b.broker.grpc.port}` };
  return h;
}

const open = (harness: Harness, key: string, clock?: FakeClock) => {
  const source = openTokenSource({
    address: harness.grpcAddress,
    appId: SHOP.id,
    kind: "access_token",
    credentials: { apiKey: key },
    ...(clock ? { clock } : {}),
  });
  sources.push(source);
  return source;
};

/** Waits in real time (the broker's I/O) for `check` to hold. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("TokenSource", () => {
  it("resolves with the broker's token, follows each new version from the stream, and says which version it applied", async () => {
    const harness = await start();
    const tokens = createGrpcJsClient(TokenService, harness.grpcAddress);
    const auth = { metadata: { authorization: `Bearer ${KEYS.full}` } };
    const source = await createTokenSource({
      address: harness.grpcAddress,
      appId: SHOP.id,
      kind: "access_token",
      credentials: { apiKey: KEYS.full },
    });
    sources.push(source);
    const v1 = (await tokens.getToken({ appId: SHOP.id, kind: TokenKind.ACCESS_TOKEN }, auth))
      .token;
    expect(source.token()).toBe(v1?.value);
    expect(source.state()).toBe("fresh");
    expect(source.isReady()).toBe(true);
    expect(source.status()).toMatchObject({ mode: "streaming", version: 1n, polls: 0 });

    const updates: HeldToken[] = [];
    source.onUpdate((t) => updates.push(t));
    const replaced = await tokens.invalidateToken(
      {
        appId: SHOP.id,
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: v1?.value ?? "",
        errcode: 40001,
      },
      auth,
    );
    await until(() => source.current()?.version === 2n, "version 2");
    expect(source.token()).toBe(replaced.token?.value);
    expect(updates.map((u) => u.version)).toEqual([2n]);
    expect(updates[0]?.previousValidUntil).toBeGreaterThan(Date.now());
    // Pushed, not polled.
    expect(source.status().polls).toBe(0);

    // The broker counts this instance on version 2.
    const admin = createGrpcJsClient(AdminService, harness.grpcAddress);
    await until(() => source.status().acknowledgedVersion === 2n, "the ack of version 2");
    const status = await admin.getStatus(
      { appId: SHOP.id },
      { metadata: { authorization: `Bearer ${KEYS.ops}` } },
    );
    expect(status.credentials[0]).toMatchObject({ clientsCurrent: 1, clientsSuperseded: 0 });
    tokens.close();
    admin.close();
  });

  it("withToken: a 40001 from WeChat is reported once and the call retried once with the new token; 20 concurrent calls cause one refresh", async () => {
    const harness = await start();
    const source = open(harness, KEYS.full);
    await source.ready;
    const wechat = harness.emulator;
    const callWechat = async (token: string) => {
      const res = await fetch(`${harness.emulatorUrl}/cgi-bin/getcallbackip?access_token=${token}`);
      return (await res.json()) as { errcode?: number; ip_list?: string[] };
    };
    // Another party fetches twice: the broker's token dies at once (R8).
    const foreign = `${harness.emulatorUrl}/cgi-bin/token?grant_type=client_credential&appid=${SHOP.appid}&secret=${SHOP.secret}`;
    await fetch(foreign);
    await fetch(foreign);
    const dead = source.token();
    expect((await callWechat(dead)).errcode).toBe(40001);
    const fetchesBefore = wechat.control.callCount("/cgi-bin/token", SHOP.appid);

    const used: string[] = [];
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        source.withToken(async (token) => {
          used.push(token);
          return callWechat(token);
        }),
      ),
    );
    for (const r of results) expect(r.ip_list?.length).toBeGreaterThan(0);
    // Each call ran twice: with the dead token, then once with the new one.
    expect(used.filter((t) => t === dead)).toHaveLength(20);
    expect(used.filter((t) => t !== dead)).toHaveLength(20);
    expect(new Set(used.filter((t) => t !== dead)).size).toBe(1);
    expect(wechat.control.callCount("/cgi-bin/token", SHOP.appid) - fetchesBefore).toBe(1);
    expect(source.current()?.version).toBe(2n);

    // An SDK that throws the errcode (co-wechat-api's WeChatAPIError has it as `code`).
    const thrown = Object.assign(new Error("invalid credential"), { code: 40001 });
    let calls = 0;
    const seen: string[] = [];
    const value = await source.withToken(async (token) => {
      calls++;
      seen.push(token);
      if (calls === 1) throw thrown;
      return "second";
    });
    expect(value).toBe("second");
    expect(calls).toBe(2);
    expect(seen[1]).not.toBe(seen[0]);
    expect(source.current()?.version).toBe(3n);

    // Anything else is returned as is, with no report and no retry.
    let once = 0;
    const other = await source.withToken(async () => {
      once++;
      return { errcode: 45009 };
    });
    expect(other).toEqual({ errcode: 45009 });
    expect(once).toBe(1);
  });

  it("falls back to GetToken polling at refresh_after for a client that may not stream, and takes each new version then", async () => {
    const clock = new FakeClock();
    const harness = await start(clock);
    const source = open(harness, KEYS.getOnly, clock);
    await source.ready;
    expect(source.status().mode).toBe("polling");
    const first = source.current();
    if (!first) throw new Error("no token");
    expect(first.version).toBe(1n);
    const polls = source.status().polls;

    // Nothing is polled before refresh_after.
    await clock.advance(first.refreshAfter - clock.now() - 1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(source.status().polls).toBe(polls);
    expect(source.state()).toBe("fresh");

    // The broker replaces it at refresh_after; the source asks then and gets it.
    await clock.advance(3000);
    await until(() => source.current()?.version === 2n, "version 2 by polling");
    expect(source.state()).toBe("fresh");
    expect(source.status().polls).toBeGreaterThan(polls);
    expect(source.status().lastError?.during).toMatch(/WatchToken/);
  });

  it("serves the last good token while the broker cannot refresh (stale), until its real expiry and never after; fresh again once WeChat answers", async () => {
    const clock = new FakeClock();
    const harness = await start(clock);
    const source = open(harness, KEYS.full, clock);
    await source.ready;
    const first = source.current();
    if (!first) throw new Error("no token");
    harness.emulator.control.injectFault({
      endpoint: "/cgi-bin/token",
      action: { type: "http", status: 503 },
    });
    const wechatExpiry = first.fetchedAt + 7200_000;

    // Past refresh_after the broker keeps failing: the same token, stale, with
    // its end moving with the broker's word, up to WeChat's own expiry.
    await clock.advance(first.refreshAfter - clock.now() + 5000);
    await until(() => source.state() === "stale", "stale");
    expect(source.token()).toBe(first.value);
    let lastEnd = 0;
    while (clock.now() < wechatExpiry - 60_000) {
      await clock.advance(30_000);
      await new Promise((r) => setTimeout(r, 20));
      if (process.env.DBG) console.log(new Date(clock.now()).toISOString(), source.status());
      expect(source.token()).toBe(first.value);
      expect(source.state()).toBe("stale");
      lastEnd = source.current()?.expiresAt ?? 0;
    }
    expect(lastEnd).toBeLessThanOrEqual(wechatExpiry);
    await until(() => (source.current()?.expiresAt ?? 0) === wechatExpiry, "WeChat's expiry");

    // At WeChat's expiry it is no longer handed out.
    await clock.advance(wechatExpiry - clock.now());
    expect(source.state()).toBe("expired");
    expect(source.isReady()).toBe(false);
    expect(() => source.token()).toThrow(TokenUnavailableError);
    expect(() => source.token()).toThrow(/expired at/);

    // WeChat answers again: a new token arrives (pushed or polled), fresh.
    harness.emulator.control.clearFaults();
    for (let i = 0; i < 40 && source.state() !== "fresh"; i++) {
      await clock.advance(30_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => source.state() === "fresh", "fresh again");
    expect(source.token()).not.toBe(first.value);
  }, 60_000);

  it("reopens a stream the broker ends at its maximum age at once, without polling, and always has the token meanwhile", async () => {
    const harness = await start(undefined, { maxStreamAgeSeconds: 1, maxStreamAgeJitter: 0.2 });
    const source = open(harness, KEYS.full);
    await source.ready;
    let missing = 0;
    const sampler = setInterval(() => {
      if (!source.isReady()) missing++;
    }, 2);
    try {
      await until(() => source.status().reconnects >= 3, "three streams ended by age", 20_000);
    } finally {
      clearInterval(sampler);
    }
    expect(missing).toBe(0);
    await until(() => source.status().mode === "streaming", "a stream again");
    expect(source.status()).toMatchObject({ version: 1n, polls: 0 });
    expect(source.status().lastError?.message).toMatch(/maximum age/);
  });

  it("createTokenSource rejects for an app the broker does not serve, and for a client with neither get nor watch", async () => {
    const harness = await start();
    const unknown = createTokenSource({
      address: harness.grpcAddress,
      appId: "nope",
      kind: "access_token",
      credentials: { apiKey: KEYS.full },
    });
    await expect(unknown).rejects.toThrow(/permission_denied/);
    const ops = createTokenSource({
      address: harness.grpcAddress,
      appId: SHOP.id,
      kind: "access_token",
      credentials: { apiKey: KEYS.ops },
    });
    await expect(ops).rejects.toThrow(/permission/);
    const badKey = createTokenSource({
      address: harness.grpcAddress,
      appId: SHOP.id,
      kind: "access_token",
      credentials: { apiKey: "not-a-key-of-this-broker" },
    });
    await expect(badKey).rejects.toThrow(/unauthenticated/);
  });
});
