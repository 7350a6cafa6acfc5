import { describe, expect, it } from "vitest";
import { APPID, errcodeOf, SECRET, startEmulator, tokenOf } from "./harness.js";

const RID = / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;

describe("wire format", () => {
  it("R1: errors are HTTP 200 JSON with errcode and an errmsg ending in a rid", async () => {
    const h = await startEmulator();
    const answer = await h.classic(APPID, "wrong");
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(Object.keys(answer.body).sort()).toEqual(["errcode", "errmsg"]);
    expect(answer.body.errcode).toBe(40125);
    expect(answer.body.errmsg).toMatch(/^invalid appsecret rid: /);
    expect(answer.body.errmsg).toMatch(RID);
    // The first rid group is the emulator's time in hex seconds.
    const head = String(answer.body.errmsg).split("rid: ")[1]?.slice(0, 8);
    expect(Number.parseInt(head ?? "", 16)).toBe(h.clock.now() / 1000);
  });

  it("R2: token successes have no errcode; ticket, probe-free and quota successes carry errcode 0", async () => {
    const h = await startEmulator();
    const classic = await h.classic();
    expect(Object.keys(classic.body).sort()).toEqual(["access_token", "expires_in"]);
    const stable = await h.stable();
    expect(Object.keys(stable.body).sort()).toEqual(["access_token", "expires_in"]);
    const token = tokenOf(classic);
    const ticket = await h.get("/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" });
    expect(ticket.body).toMatchObject({ errcode: 0, errmsg: "ok" });
    const quota = await h.post(
      "/cgi-bin/openapi/quota/get",
      { cgi_path: "/cgi-bin/token" },
      { access_token: token },
    );
    expect(quota.body).toMatchObject({ errcode: 0, errmsg: "ok" });
    const clear = await h.post("/cgi-bin/clear_quota", { appid: APPID }, { access_token: token });
    expect(clear.body).toEqual({ errcode: 0, errmsg: "ok" });
  });

  it("R3: tokens are <n>_<base64url>, 64-512 chars, unique and never reissued", async () => {
    const h = await startEmulator();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const token = tokenOf(i % 2 ? await h.classic() : await h.stable(true));
      if (i % 2 === 0) await h.advance(31);
      expect(token).toMatch(/^\d+_[A-Za-z0-9_-]+$/);
      expect(token.length).toBeGreaterThanOrEqual(64);
      expect(token.length).toBeLessThanOrEqual(512);
      expect(seen.has(token)).toBe(false);
      seen.add(token);
    }
    expect(seen.size).toBe(20);
  });

  it("unknown API paths get HTTP 200 errcode 40066 and are not counted", async () => {
    const h = await startEmulator();
    const answer = await h.get("/cgi-bin/no_such_api", { access_token: "x" });
    expect(answer.status).toBe(200);
    expect(errcodeOf(answer)).toBe(40066);
    expect(answer.body.errmsg).toMatch(RID);
    expect(h.emulator.control.counters()).toEqual({});
  });

  it("query parameters that are present but empty count as missing", async () => {
    const h = await startEmulator();
    const answer = await h.get("/cgi-bin/token", {
      grant_type: "client_credential",
      appid: "",
      secret: SECRET,
    });
    expect(errcodeOf(answer)).toBe(41002);
  });
});
