import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  QuotaExhaustedError,
  UpstreamConfigError,
  UpstreamUnavailableError,
} from "../../src/shared/errors.js";
import {
  eventually,
  never,
  OA,
  startTokenHarness,
  type TokenHarness,
} from "../helpers/token-harness.js";

const TOKEN = "/cgi-bin/token";
const H2 = 7_200_000;

describe("GetToken path of the TokenManager (emulator over HTTP)", () => {
  let h: TokenHarness;
  beforeEach(async () => {
    h = await startTokenHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("answers 1000 concurrent callers on a cold cache with exactly one upstream fetch", async () => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => h.manager.get("oa", "access_token", never)),
    );
    expect(h.calls(TOKEN)).toBe(1);
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    expect(results[0]?.version).toBe(1);
    const check = h.emulator.control.checkToken(results[0]?.value ?? "");
    expect(check).toMatchObject({ valid: true, appid: OA.appid, role: "current" });
  });

  it("serves a warm cache without calling WeChat", async () => {
    await h.manager.get("oa", "access_token", never);
    await h.clock.advance(60 * 60_000);
    for (let i = 0; i < 100; i++) await h.manager.get("oa", "access_token", never);
    expect(h.calls(TOKEN)).toBe(1);
  });

  it("cached() answers from memory only: nothing when cold or expired, the token when servable", async () => {
    expect(h.manager.cached("oa", "access_token")).toBeUndefined();
    expect(() => h.manager.cached("nope", "access_token")).toThrow(/nope/);
    const fetched = await h.manager.get("oa", "access_token", never);
    expect(h.manager.cached("oa", "access_token")).toBe(fetched);
    h.emulator.control.injectFault({ endpoint: TOKEN, action: { type: "http", status: 502 } });
    await h.clock.advance(H2);
    expect(h.manager.cached("oa", "access_token")).toBeUndefined();
    expect(h.calls(TOKEN)).toBeGreaterThanOrEqual(1);
  });

  it("refreshes proactively before expiry: once per rotation, and the old token keeps its 5-minute overlap", async () => {
    const first = await h.manager.get("oa", "access_token", never);
    const due = h.manager.nextRefreshAt("oa", "access_token") ?? 0;
    // margin 10 min, jitter 0.5 × 20% → 11 min before expiry
    expect(due).toBe(first.expiresAt - 660_000);
    await h.clock.advance(due - h.clock.now() - 1);
    expect(h.calls(TOKEN)).toBe(1);
    await h.clock.advance(1);
    await eventually(() => h.calls(TOKEN) === 2, "the scheduled refresh");
    await eventually(
      () => (h.manager.nextRefreshAt("oa", "access_token") ?? 0) > due,
      "the next schedule",
    );
    const second = await h.manager.get("oa", "access_token", never);
    expect(second.version).toBe(2);
    expect(second.value).not.toBe(first.value);
    expect(second.previousValidUntil).toBe(second.fetchedAt + 300_000);
    expect(h.emulator.control.checkToken(first.value)).toMatchObject({
      valid: true,
      role: "grace",
    });
    expect(h.emulator.control.checkToken(second.value)).toMatchObject({
      valid: true,
      role: "current",
    });
  });

  it("over a simulated day fetches once per rotation and never hands out an invalid token", async () => {
    await h.manager.get("oa", "access_token", never);
    const end = h.clock.now() + 24 * 3_600_000;
    let rotations = 0;
    let last = 1;
    while (h.clock.now() < end) {
      await h.clock.advance(5 * 60_000);
      const t = await h.manager.get("oa", "access_token", never);
      expect(h.emulator.control.checkToken(t.value).valid).toBe(true);
      if (t.version !== last) {
        rotations++;
        last = t.version;
      }
    }
    // A 7200 s token refreshed 11 min early lasts 109 min: 13 rotations in 24 h.
    expect(rotations).toBe(13);
    expect(h.calls(TOKEN)).toBe(1 + rotations);
  });

  it("keeps serving the valid token while scheduled refreshes fail, retrying with backoff", async () => {
    const first = await h.manager.get("oa", "access_token", never);
    h.emulator.control.injectFault({
      endpoint: TOKEN,
      action: { type: "errcode", errcode: -1 },
      times: 4,
    });
    await h.clock.advance((h.manager.nextRefreshAt("oa", "access_token") ?? 0) - h.clock.now());
    await eventually(() => h.calls(TOKEN) === 2, "first scheduled attempt");
    // Retries after 1 s, 2 s, 4 s, 8 s (jitter 0.5 → factor 1.0); the fifth attempt succeeds.
    for (const [delay, callsAfter] of [
      [1000, 3],
      [2000, 4],
      [4000, 5],
      [8000, 6],
    ] as const) {
      await eventually(
        () => h.manager.nextRefreshAt("oa", "access_token") === h.clock.now() + delay,
        "retry planned",
      );
      await h.clock.advance(delay - 1);
      expect(h.calls(TOKEN)).toBe(callsAfter - 1);
      const served = await h.manager.get("oa", "access_token", never);
      expect(served.value).toBe(first.value);
      await h.clock.advance(1);
      await eventually(() => h.calls(TOKEN) === callsAfter, `attempt ${callsAfter - 1}`);
    }
    await eventually(
      () => (h.manager.nextRefreshAt("oa", "access_token") ?? 0) > h.clock.now() + 60_000,
      "replanned",
    );
    const second = await h.manager.get("oa", "access_token", never);
    expect(second.version).toBe(2);
    expect(second.value).not.toBe(first.value);
    expect(h.calls(TOKEN)).toBe(6);
  });

  it("never hands out an expired token: UNAVAILABLE once nothing valid remains", async () => {
    await h.manager.get("oa", "access_token", never);
    h.emulator.control.injectFault({ endpoint: TOKEN, action: { type: "http", status: 502 } });
    await h.clock.advance(H2);
    const err = await h.manager.get("oa", "access_token", never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as Error).message).toMatch(
      /could not get the access_token of app 'oa' from WeChat .*HTTP 502.*retry/,
    );
  });

  it("reports a wrong AppSecret as a config error without leaking the secret, and holds back the crowd", async () => {
    h.emulator.control.resetSecret(OA.appid, "a-different-secret");
    const errors = await Promise.all(
      Array.from({ length: 50 }, () =>
        h.manager.get("oa", "access_token", never).catch((e: unknown) => e),
      ),
    );
    for (const e of errors) {
      expect(e).toBeInstanceOf(UpstreamConfigError);
      expect((e as UpstreamConfigError).errcode).toBe(40125);
      expect((e as Error).message).toMatch(/errcode 40125.*check the app's AppSecret/);
      expect((e as Error).message).not.toContain(OA.secret);
    }
    // Callers arriving after the failure get it from the hold, not from WeChat.
    await h.clock.advance(10_000);
    await h.manager.get("oa", "access_token", never).catch(() => {});
    expect(h.calls(TOKEN)).toBe(1);
    await h.clock.advance(60_000);
    await h.manager.get("oa", "access_token", never).catch(() => {});
    expect(h.calls(TOKEN)).toBe(2);
  });

  it("maps 45009 to a quota error that says when it resets", async () => {
    h.emulator.control.setDailyLimit(OA.appid, TOKEN, 0);
    const err = await h.manager.get("oa", "access_token", never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaExhaustedError);
    expect((err as Error).message).toMatch(
      /quota is used up .*errcode 45009.*resets at 00:00 China time/,
    );
  });

  it("gives up on a hung upstream after the request timeout", async () => {
    await h.close();
    h = await startTokenHarness({ timeoutMs: 200 });
    h.emulator.control.injectFault({ endpoint: TOKEN, action: { type: "hang" } });
    const started = Date.now();
    const err = await h.manager.get("oa", "access_token", never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as Error).message).toMatch(/no answer within 200 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("lets a caller stop waiting without cancelling the shared fetch", async () => {
    h.emulator.control.injectFault({
      endpoint: TOKEN,
      action: { type: "latency", ms: 200 },
      times: 1,
    });
    const impatient = new AbortController();
    const first = h.manager.get("oa", "access_token", impatient.signal);
    const patient = h.manager.get("oa", "access_token", never);
    impatient.abort(new Error("caller gave up"));
    await expect(first).rejects.toThrow("caller gave up");
    expect((await patient).version).toBe(1);
    expect(h.calls(TOKEN)).toBe(1);
  });
});
