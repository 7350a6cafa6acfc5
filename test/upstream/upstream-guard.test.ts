import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { UpstreamError } from "../../src/core/upstream-error.js";
import {
  createWechatClient,
  type WechatClient,
} from "../../src/credentials/wechat/wechat-client.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { MemoryQuotaLedger } from "../../src/quota/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { DEFAULT_BREAKER_POLICY, UpstreamBreakers } from "../../src/upstream/upstream-breakers.js";
import { type GuardedEndpoint, UpstreamGuard } from "../../src/upstream/upstream-guard.js";
import { FakeClock } from "../helpers/fake-clock.js";

const APP = { appid: "wx00000000000000g1", secret: "guard-secret-0000000" };
const TOKEN = "/cgi-bin/token";
const CLEAR = "/cgi-bin/clear_quota/v2";
const never = new AbortController().signal;

/** WeChat is the emulator over loopback HTTP; the guard, breakers and ledger are the real ones. */
describe("UpstreamGuard", () => {
  let emulator: Emulator;
  let breakers: UpstreamBreakers;
  afterEach(async () => {
    breakers.close();
    await emulator.close();
  });

  async function start(
    o: { random?: () => number; timeoutMs?: number; tokenBudget?: number; lenient?: boolean } = {},
  ) {
    const clock = new FakeClock();
    const waits = new FakeClock();
    emulator = createEmulator({ clock, apps: [APP], logger: silentLogger() });
    const { url } = await emulator.listen(0, "127.0.0.1");
    breakers = new UpstreamBreakers({
      clock,
      logger: silentLogger(),
      // The production policy, or one that never opens (to see every failure reach WeChat).
      ...(o.lenient ? { policy: { ...DEFAULT_BREAKER_POLICY, volumeThreshold: 1000 } } : {}),
    });
    const outcomes: Array<[GuardedEndpoint, string]> = [];
    const guard = new UpstreamGuard({
      breakers,
      clock,
      logger: silentLogger(),
      quota: new MemoryQuotaLedger({
        clock,
        budgets: { defaults: { [TOKEN]: o.tokenBudget ?? 100, clear_quota: 0 } },
      }),
      observe: (_app, endpoint, outcome) => outcomes.push([endpoint, outcome]),
      retryDelaysMs: [200, 600],
      retryClock: waits,
      ...(o.random ? { random: o.random } : {}),
    });
    const client = createWechatClient({ baseUrl: url, timeoutMs: o.timeoutMs ?? 2000 });
    const token = (c: WechatClient = client, secret = APP.secret, retries = true) =>
      guard.call("app", TOKEN, () => c.fetchAccessToken({ appid: APP.appid, secret }), {
        retries,
        signal: never,
      });
    return { waits, guard, client, token, outcomes };
  }

  it("waits between inline retries on its retry clock, jittered by the injected randomness", async () => {
    const { waits, token, outcomes } = await start({ random: () => 0 }); // jitter factor 0.8
    emulator.control.injectFault({
      endpoint: TOKEN,
      times: 2,
      action: { type: "errcode", errcode: -1 },
    });
    let settled = false;
    const result = token().finally(() => {
      settled = true;
    });
    for (const delay of [160, 480]) {
      await until(() => waits.pending === 1);
      await waits.advance(delay - 1);
      expect(settled).toBe(false);
      expect(waits.pending).toBe(1);
      await waits.advance(1);
    }
    expect((await result).value).toMatch(/\S/);
    expect(outcomes.map(([, o]) => o)).toEqual(["-1", "-1", "ok"]);
  });

  it("labels each failure from its structured kind: errcode, HTTP status, timeout, network", async () => {
    const { token, outcomes } = await start({ timeoutMs: 300, lenient: true });
    await expect(token(undefined, "wrong-secret-000000000", false)).rejects.toMatchObject({
      failure: { kind: "errcode", errcode: 40125 },
    });
    emulator.control.injectFault({
      endpoint: TOKEN,
      times: 1,
      action: { type: "http", status: 503 },
    });
    await expect(token(undefined, APP.secret, false)).rejects.toMatchObject({
      failure: { kind: "http", status: 503 },
    });
    emulator.control.injectFault({ endpoint: TOKEN, times: 1, action: { type: "hang" } });
    await expect(token(undefined, APP.secret, false)).rejects.toMatchObject({
      failure: { kind: "timeout", afterMs: 300 },
    });
    const closed = createWechatClient({ baseUrl: await closedPortUrl(), timeoutMs: 300 });
    await expect(token(closed, APP.secret, false)).rejects.toMatchObject({
      failure: { kind: "network", code: "ECONNREFUSED" },
    });
    expect(outcomes.map(([, o]) => o)).toEqual(["40125", "http_503", "timeout", "network"]);
  });

  it("refuses locally, without calling WeChat, when the ledger's budget is used up", async () => {
    const { token, outcomes } = await start({ tokenBudget: 0 });
    const refused = await token().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamError);
    expect(refused).toMatchObject({ failure: { kind: "not_called", reason: "budget" } });
    expect(emulator.control.callCount(TOKEN)).toBe(0);
    expect(outcomes).toEqual([[TOKEN, "refused_locally"]]);
  });

  it("takes quota clears through the breaker and metrics, leaving their metering to the caller", async () => {
    const { guard, client, outcomes } = await start();
    const clear = () =>
      guard.call("app", CLEAR, () => client.clearQuota({ appid: APP.appid, secret: APP.secret }), {
        retries: false,
        signal: never,
      });
    // clear_quota's budget is 0 in the ledger: the guard does not take it (the admin service does).
    await clear();
    // Two faults in three calls open the production breaker.
    for (let i = 0; i < 2; i++) {
      emulator.control.injectFault({
        endpoint: CLEAR,
        times: 1,
        action: { type: "http", status: 502 },
      });
      await expect(clear()).rejects.toMatchObject({ failure: { kind: "http", status: 502 } });
    }
    expect(breakers.state("app", CLEAR)).toBe("open");
    await expect(clear()).rejects.toMatchObject({
      code: "UPSTREAM_CIRCUIT_OPEN",
      failure: { kind: "not_called", reason: "circuit_open" },
    });
    expect(emulator.control.callCount(CLEAR)).toBe(3);
    expect(outcomes).toEqual([
      [CLEAR, "ok"],
      [CLEAR, "http_502"],
      [CLEAR, "http_502"],
      [CLEAR, "circuit_open"],
    ]);
  });
});

/** Waits in real time (the emulator answers over HTTP) until `cond` holds. */
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The URL of a loopback port nothing listens on. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
