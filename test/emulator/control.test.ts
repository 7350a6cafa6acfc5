import { describe, expect, it } from "vitest";
import { createEmulator, EmulatorControlError } from "../../src/emulator/index.js";
import {
  APPID,
  errcodeOf,
  type Harness,
  SECRET,
  START,
  startEmulator,
  tokenOf,
} from "./harness.js";

/** Calls a control endpoint and returns status and JSON body. */
async function admin(h: Harness, method: string, path: string, body?: unknown) {
  const res = await fetch(`${h.url}/_emulator${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

describe("R44: control hooks", () => {
  it("reset-secret kills every token of the account at once (40001)", async () => {
    const h = await startEmulator();
    const c1 = tokenOf(await h.classic());
    const c2 = tokenOf(await h.classic());
    const s1 = tokenOf(await h.stable());
    const reply = await admin(h, "POST", `/apps/${APPID}/reset-secret`, { secret: "new-secret" });
    expect(reply).toEqual({ status: 200, body: { ok: true } });
    for (const token of [c1, c2, s1]) expect(errcodeOf(await h.probe(token))).toBe(40001);
    expect(h.emulator.control.liveTokens()).toEqual([]);
    expect(errcodeOf(await h.classic(APPID, SECRET))).toBe(40125);
    const fresh = tokenOf(await h.classic(APPID, "new-secret"));
    expect(errcodeOf(await h.probe(fresh))).toBe(0);
    const stable = await h.stable(false, APPID, "new-secret");
    expect(tokenOf(stable)).not.toBe(s1);
  });

  it("freeze / unfreeze over HTTP switch 40243 on and off", async () => {
    const h = await startEmulator();
    expect((await admin(h, "POST", `/apps/${APPID}/freeze`)).status).toBe(200);
    expect(errcodeOf(await h.classic())).toBe(40243);
    expect(errcodeOf(await h.stable())).toBe(40243);
    await admin(h, "POST", `/apps/${APPID}/unfreeze`);
    expect(errcodeOf(await h.classic())).toBe(0);
  });

  it("flags, whitelist, risk and limits over HTTP", async () => {
    const h = await startEmulator();
    await admin(h, "POST", `/apps/${APPID}/flags`, { accountFrozen: true });
    expect(errcodeOf(await h.classic())).toBe(50007);
    await admin(h, "POST", `/apps/${APPID}/flags`, { accountFrozen: false });
    await admin(h, "POST", `/apps/${APPID}/ip-whitelist`, { ips: ["10.9.9.9"] });
    expect(errcodeOf(await h.classic())).toBe(40164);
    await admin(h, "POST", `/apps/${APPID}/ip-whitelist`, { ips: null });
    await admin(h, "POST", `/apps/${APPID}/risk`, { state: "blocked" });
    expect(errcodeOf(await h.classic())).toBe(89506);
    await admin(h, "POST", `/apps/${APPID}/risk`, { state: "none" });
    const limits = await admin(h, "POST", `/apps/${APPID}/limits`, {
      endpoint: "/cgi-bin/token",
      daily: 1,
    });
    expect(limits.status).toBe(200);
    expect(errcodeOf(await h.classic())).toBe(0);
    expect(errcodeOf(await h.classic())).toBe(45009);
    const quota = await admin(h, "GET", `/apps/${APPID}/quota`);
    expect(quota.body).toMatchObject({
      "/cgi-bin/token": { dailyLimit: 1, used: 1, remain: 0, minuteLimit: null },
    });
  });

  it("clock/advance moves the emulator clock: tokens expire, quota days roll", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.classic());
    const moved = await admin(h, "POST", "/clock/advance", { seconds: 7200 });
    expect(moved.body).toEqual({ now: START + 7_200_000, iso: "2026-01-01T06:00:00.000Z" });
    expect(errcodeOf(await h.probe(token))).toBe(42001);
    expect(h.emulator.control.advanceClock(1000)).toBe(START + 7_201_000);
    expect((await admin(h, "POST", "/clock/advance", { ms: -1 })).status).toBe(400);
    expect((await admin(h, "GET", "/clock")).body).toMatchObject({ now: START + 7_201_000 });
  });

  it("tokens lists live tokens per slot with their expiries", async () => {
    const h = await startEmulator({ tokenLifetimeSeconds: 600, graceSeconds: 60 });
    const c1 = tokenOf(await h.classic());
    await h.advance(100);
    const c2 = tokenOf(await h.classic());
    const s1 = tokenOf(await h.stable());
    const live = await admin(h, "GET", "/tokens");
    const t = START + 100_000;
    expect(live.body).toEqual([
      {
        appid: APPID,
        slot: "classic",
        role: "current",
        value: c2,
        generation: 2,
        issuedAt: t,
        expiresAt: t + 600_000,
        validUntil: t + 600_000,
      },
      {
        appid: APPID,
        slot: "classic",
        role: "grace",
        value: c1,
        generation: 1,
        issuedAt: START,
        expiresAt: START + 600_000,
        validUntil: t + 60_000,
      },
      {
        appid: APPID,
        slot: "stable",
        role: "current",
        value: s1,
        generation: 1,
        issuedAt: t,
        expiresAt: t + 600_000,
        validUntil: t + 600_000,
      },
    ]);
    await h.advance(60);
    expect(h.emulator.control.liveTokens().map((x) => x.value)).toEqual([c2, s1]);
  });

  it("tokens/check reports a token's state without counting a call", async () => {
    const h = await startEmulator();
    const c1 = tokenOf(await h.classic());
    const c2 = tokenOf(await h.classic());
    const check = (v: string) =>
      admin(h, "GET", `/tokens/check?access_token=${encodeURIComponent(v)}`);
    expect((await check(c2)).body).toEqual({
      valid: true,
      appid: APPID,
      slot: "classic",
      role: "current",
      expiresAt: START + 7_200_000,
      validUntil: START + 7_200_000,
    });
    expect((await check(c1)).body).toMatchObject({
      valid: true,
      role: "grace",
      validUntil: START + 300_000,
    });
    await h.advance(300);
    expect((await check(c1)).body).toMatchObject({ valid: false, errcode: 40001, appid: APPID });
    expect((await check("never-issued")).body).toEqual({ valid: false, errcode: 40001 });
    expect(h.emulator.control.callCount("/cgi-bin/getcallbackip")).toBe(0);
    expect(h.emulator.control.callCount("/cgi-bin/token")).toBe(2);
  });

  it("counters count every call per endpoint and account, and can be reset", async () => {
    const h = await startEmulator();
    await h.classic();
    await h.classic(APPID, "wrong");
    await h.classic("wxnope", "x");
    await h.stable();
    const counters = await admin(h, "GET", "/counters");
    expect(counters.body).toEqual({
      "/cgi-bin/token": {
        [APPID]: { calls: 2, successes: 1, errors: { "40125": 1 }, faults: 0, quotaUsed: 1 },
        wxnope: { calls: 1, successes: 0, errors: { "40013": 1 }, faults: 0 },
      },
      "/cgi-bin/stable_token": {
        [APPID]: { calls: 1, successes: 1, errors: {}, faults: 0, quotaUsed: 1 },
      },
    });
    const { control } = h.emulator;
    expect(control.callCount("/cgi-bin/token")).toBe(3);
    expect(control.callCount("/cgi-bin/token", APPID)).toBe(2);
    await admin(h, "DELETE", "/counters");
    expect(control.counters()).toEqual({});
    await h.get("/cgi-bin/getcallbackip");
    expect(control.counters()["/cgi-bin/getcallbackip"]).toEqual({
      "-": { calls: 1, successes: 0, errors: { "41001": 1 }, faults: 0 },
    });
  });

  it("faults over HTTP: inject (201 + id), list, delete one, delete all", async () => {
    const h = await startEmulator();
    const spec = { endpoint: "/cgi-bin/token", action: { type: "errcode", errcode: -1 } };
    const created = await admin(h, "POST", "/faults", spec);
    expect(created.status).toBe(201);
    const { id } = created.body as { id: string };
    expect((await admin(h, "GET", "/faults")).body).toEqual([{ ...spec, id, fired: 0 }]);
    expect(errcodeOf(await h.classic())).toBe(-1);
    expect((await admin(h, "DELETE", `/faults/${id}`)).status).toBe(200);
    expect((await admin(h, "DELETE", `/faults/${id}`)).status).toBe(404);
    expect(errcodeOf(await h.classic())).toBe(0);
    await admin(h, "POST", "/faults", spec);
    await admin(h, "DELETE", "/faults");
    expect(errcodeOf(await h.classic())).toBe(0);
    expect((await admin(h, "POST", "/faults", { endpoint: "*" })).status).toBe(400);
  });

  it("apps over HTTP: add, list without secrets, update, remove; errors map to 4xx", async () => {
    const h = await startEmulator();
    const app = { appid: "wxnew", secret: "n", type: "mini_program" };
    expect((await admin(h, "POST", "/apps", app)).status).toBe(201);
    expect((await admin(h, "POST", "/apps", app)).status).toBe(409);
    expect((await admin(h, "POST", "/apps", { appid: "x" })).status).toBe(400);
    const token = tokenOf(await h.classic("wxnew", "n"));
    const listed = (await admin(h, "GET", "/apps")).body as Array<Record<string, unknown>>;
    expect(listed.map((a) => a.appid)).toEqual([APPID, "wx0000000000000002", "wxnew"]);
    expect(JSON.stringify(listed)).not.toContain('"secret"');
    expect(listed[2]).toMatchObject({ type: "mini_program", component: false });
    await admin(h, "PATCH", "/apps/wxnew", { component: true });
    expect(errcodeOf(await h.classic("wxnew", "n"))).toBe(61024);
    expect((await admin(h, "DELETE", "/apps/wxnew")).status).toBe(200);
    expect(errcodeOf(await h.probe(token))).toBe(40001);
    expect(errcodeOf(await h.classic("wxnew", "n"))).toBe(40013);
    expect((await admin(h, "POST", "/apps/wxnew/freeze")).status).toBe(404);
    expect((await admin(h, "GET", "/nope")).status).toBe(404);
    expect((await admin(h, "GET", "/reset")).status).toBe(405);
  });

  it("reset restores the configured apps and forgets everything else, keeping the clock", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const token = tokenOf(await h.classic());
    control.resetSecret(APPID, "changed");
    control.injectFault({ endpoint: "*", action: { type: "errcode", errcode: -1 } });
    control.advanceClock(5000);
    expect((await admin(h, "POST", "/reset")).body).toEqual({ ok: true });
    expect(control.listFaults()).toEqual([]);
    expect(control.counters()).toEqual({});
    expect(control.liveTokens()).toEqual([]);
    expect(control.checkToken(token)).toEqual({ valid: false, errcode: 40001 });
    expect(control.now()).toBe(START + 5000);
    expect(errcodeOf(await h.classic(APPID, SECRET))).toBe(0);
  });

  it("control methods throw EmulatorControlError with an HTTP status", () => {
    const emulator = createEmulator();
    expect(() => emulator.control.freezeSecret("wxnope")).toThrow(EmulatorControlError);
    try {
      emulator.control.setDailyLimit("wxnope", "/cgi-bin/token", 1);
    } catch (error) {
      expect((error as EmulatorControlError).status).toBe(404);
    }
    emulator.control.addApp({ appid: "wxa", secret: "s" });
    expect(() =>
      emulator.control.setDailyLimit("wxa", "/cgi-bin/nope" as "/cgi-bin/token", 1),
    ).toThrow(/metered path/);
  });
});
