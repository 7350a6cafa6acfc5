import { describe, expect, it } from "vitest";
import {
  APPID,
  errcodeOf,
  type Harness,
  OTHER_APPID,
  OTHER_SECRET,
  SECRET,
  startEmulator,
  tokenOf,
} from "./harness.js";

const quotaGet = (h: Harness, token: string, cgi_path: unknown) =>
  h.post("/cgi-bin/openapi/quota/get", { cgi_path }, { access_token: token });
const quotaClear = (h: Harness, token: string, cgi_path: unknown) =>
  h.post("/cgi-bin/openapi/quota/clear", { cgi_path }, { access_token: token });
const clearQuota = (h: Harness, token: string, appid: string) =>
  h.post("/cgi-bin/clear_quota", { appid }, { access_token: token });
const clearV2 = (h: Harness, query: Record<string, string>, body?: unknown) =>
  h.post("/cgi-bin/clear_quota/v2", body, query);

/** Uses up the classic token quota of APPID with a daily limit of `n`. */
async function exhaustClassic(h: Harness, n: number): Promise<void> {
  h.emulator.control.setDailyLimit(APPID, "/cgi-bin/token", n);
  for (let i = 0; i < n; i++) expect(errcodeOf(await h.classic())).toBe(0);
  expect(errcodeOf(await h.classic())).toBe(45009);
}

describe("quota APIs", () => {
  it("R23: quota/get reports daily_limit, used and remain of the token's account", async () => {
    const h = await startEmulator();
    const stable = tokenOf(await h.stable());
    await h.classic();
    await h.classic();
    const answer = await quotaGet(h, stable, "/cgi-bin/token");
    expect(answer.body).toEqual({
      errcode: 0,
      errmsg: "ok",
      quota: { daily_limit: 2000, used: 2, remain: 1998 },
    });
    const own = await quotaGet(h, stable, "/cgi-bin/stable_token");
    expect(own.body.quota).toEqual({ daily_limit: 500000, used: 1, remain: 499999 });
  });

  it("R23: unknown cgi_path → 76021, /sns/ → 76022, not a path → 76003, bad token → 40001", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.stable());
    expect(errcodeOf(await quotaGet(h, token, "/cgi-bin/message/custom/send"))).toBe(76021);
    expect(errcodeOf(await quotaGet(h, token, "/cgi-bin/stable_token#force"))).toBe(76021);
    expect(errcodeOf(await quotaGet(h, token, "/sns/oauth2/access_token"))).toBe(76022);
    expect(errcodeOf(await quotaGet(h, token, "https://api.weixin.qq.com/cgi-bin/token"))).toBe(
      76003,
    );
    expect(errcodeOf(await quotaGet(h, token, undefined))).toBe(76003);
    expect(errcodeOf(await quotaGet(h, "nope", "/cgi-bin/token"))).toBe(40001);
    const noToken = await h.post("/cgi-bin/openapi/quota/get", { cgi_path: "/cgi-bin/token" });
    expect(errcodeOf(noToken)).toBe(41001);
    expect(errcodeOf(await h.get("/cgi-bin/openapi/quota/get", { access_token: token }))).toBe(
      43002,
    );
  });

  it("R24: clear_quota resets every daily counter of the account, 10 times a month", async () => {
    const h = await startEmulator();
    const stable = tokenOf(await h.stable());
    await exhaustClassic(h, 2);
    expect(errcodeOf(await clearQuota(h, stable, OTHER_APPID))).toBe(40013);
    expect(errcodeOf(await h.post("/cgi-bin/clear_quota", {}, { access_token: stable }))).toBe(
      41002,
    );
    expect(errcodeOf(await clearQuota(h, stable, APPID))).toBe(0);
    const quota = h.emulator.control.quota(APPID);
    expect(quota["/cgi-bin/token"].used).toBe(0);
    expect(quota["/cgi-bin/stable_token"].used).toBe(0);
    expect(errcodeOf(await h.classic())).toBe(0);
    for (let i = 2; i <= 10; i++) expect(errcodeOf(await clearQuota(h, stable, APPID))).toBe(0);
    const spent = await clearQuota(h, stable, APPID);
    expect(errcodeOf(spent)).toBe(48006);
    expect(spent.body.errmsg).toMatch(/^forbid to clear quota because of reaching the limit/);
  });

  it("R25/C1: clear_quota/v2 takes appid + appsecret from the query only and needs no token", async () => {
    const h = await startEmulator();
    await exhaustClassic(h, 1);
    expect(errcodeOf(await clearV2(h, { appsecret: SECRET }))).toBe(41002);
    expect(errcodeOf(await clearV2(h, { appid: APPID }))).toBe(41004);
    expect(errcodeOf(await clearV2(h, { appid: "wxnope", appsecret: SECRET }))).toBe(40013);
    expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: OTHER_SECRET }))).toBe(40125);
    expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(0);
    expect(errcodeOf(await h.classic())).toBe(0);
    // WeChat: "URL 参数,非 Body 参数". A body-only request names no appid.
    expect(errcodeOf(await h.classic())).toBe(45009);
    expect(errcodeOf(await clearV2(h, {}, { appid: APPID, appsecret: SECRET }))).toBe(41002);
    expect(errcodeOf(await clearV2(h, { appid: APPID }, { appsecret: SECRET }))).toBe(41004);
    expect(errcodeOf(await h.classic())).toBe(45009);
  });

  it("R24/R25: clear_quota and clear_quota/v2 share the 10-a-month allowance", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.stable());
    for (let i = 0; i < 5; i++) expect(errcodeOf(await clearQuota(h, token, APPID))).toBe(0);
    for (let i = 0; i < 5; i++) {
      expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(0);
    }
    expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(48006);
    expect(errcodeOf(await clearQuota(h, token, APPID))).toBe(48006);
    // Another account has its own allowance.
    expect(errcodeOf(await clearV2(h, { appid: OTHER_APPID, appsecret: OTHER_SECRET }))).toBe(0);
  });

  it("R26: quota/clear resets one API only, with its own 50 clears a month", async () => {
    const h = await startEmulator();
    const stable = tokenOf(await h.stable());
    await exhaustClassic(h, 1);
    expect(errcodeOf(await quotaClear(h, stable, "/cgi-bin/token"))).toBe(0);
    const quota = h.emulator.control.quota(APPID);
    expect(quota["/cgi-bin/token"].used).toBe(0);
    expect(quota["/cgi-bin/stable_token"].used).toBe(1);
    for (let i = 2; i <= 50; i++) {
      expect(errcodeOf(await quotaClear(h, stable, "/cgi-bin/getcallbackip"))).toBe(0);
    }
    expect(errcodeOf(await quotaClear(h, stable, "/cgi-bin/token"))).toBe(48006);
    // The clear_quota allowance is separate.
    expect(errcodeOf(await clearQuota(h, stable, APPID))).toBe(0);
    expect(errcodeOf(await quotaClear(h, stable, "/sns/x"))).toBe(76022);
  });

  it("R26: clearing stable_token also restores the 20 force refreshes", async () => {
    const h = await startEmulator();
    h.emulator.control.setDailyLimit(APPID, "/cgi-bin/stable_token#force", 1);
    const token = tokenOf(await h.stable(true));
    await h.advance(31);
    expect(errcodeOf(await h.stable(true))).toBe(45009);
    expect(errcodeOf(await quotaClear(h, token, "/cgi-bin/stable_token"))).toBe(0);
    expect(errcodeOf(await h.stable(true))).toBe(0);
  });

  it("R27: daily counters reset at 00:00 Asia/Shanghai (16:00 UTC)", async () => {
    const h = await startEmulator();
    h.clock.set(Date.UTC(2026, 0, 1, 15, 59, 59));
    await exhaustClassic(h, 2);
    await h.clock.advance(999);
    expect(errcodeOf(await h.classic())).toBe(45009); // 23:59:59.999 in Shanghai
    await h.clock.advance(1);
    expect(errcodeOf(await h.classic())).toBe(0); // 00:00 on 2 January in Shanghai
  });

  it("R27: the day boundary is configurable", async () => {
    const h = await startEmulator({ utcOffsetMinutes: 0 });
    h.clock.set(Date.UTC(2026, 0, 1, 16, 0, 0));
    await exhaustClassic(h, 1);
    h.clock.set(Date.UTC(2026, 0, 1, 23, 59, 59));
    expect(errcodeOf(await h.classic())).toBe(45009);
    h.clock.set(Date.UTC(2026, 0, 2, 0, 0, 0));
    expect(errcodeOf(await h.classic())).toBe(0);
  });

  it("R27: monthly allowances refill on the 1st (Shanghai time); R26 can be per day", async () => {
    const h = await startEmulator();
    h.clock.set(Date.UTC(2026, 0, 31, 15, 0, 0));
    for (let i = 0; i < 10; i++) {
      expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(0);
    }
    expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(48006);
    h.clock.set(Date.UTC(2026, 0, 31, 16, 0, 0)); // 1 February 00:00 in Shanghai
    expect(errcodeOf(await clearV2(h, { appid: APPID, appsecret: SECRET }))).toBe(0);

    const daily = await startEmulator({ apiQuotaClearPeriod: "day" });
    const token = tokenOf(await daily.stable());
    for (let i = 0; i < 50; i++) {
      expect(errcodeOf(await quotaClear(daily, token, "/cgi-bin/token"))).toBe(0);
    }
    expect(errcodeOf(await quotaClear(daily, token, "/cgi-bin/token"))).toBe(48006);
    await daily.advance(86400);
    const fresh = tokenOf(await daily.stable());
    expect(errcodeOf(await quotaClear(daily, fresh, "/cgi-bin/token"))).toBe(0);
  });
});
