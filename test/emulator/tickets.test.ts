import { describe, expect, it } from "vitest";
import {
  APPID,
  errcodeOf,
  many,
  OTHER_APPID,
  OTHER_SECRET,
  startEmulator,
  tokenOf,
} from "./harness.js";

describe("/cgi-bin/ticket/getticket", () => {
  it("R19: the token is checked first, then the same ticket comes back with expires_in 7200", async () => {
    const h = await startEmulator();
    const ticket = (access_token: string, type = "jsapi") =>
      h.get("/cgi-bin/ticket/getticket", { access_token, type });
    expect(errcodeOf(await h.get("/cgi-bin/ticket/getticket", { type: "jsapi" }))).toBe(41001);
    expect(errcodeOf(await ticket(`1_${"x".repeat(100)}`))).toBe(40001);
    const token = tokenOf(await h.stable());
    const first = await ticket(token);
    expect(first.body).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    expect(first.body.ticket).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    await h.advance(7199);
    const again = await ticket(token);
    expect(again.body.ticket).toBe(first.body.ticket);
    expect(again.body.expires_in).toBe(7200);
    await h.advance(1); // the ticket expires now; the stable token is in its last second
    const next = await ticket(tokenOf(await h.stable()));
    expect(next.body.ticket).not.toBe(first.body.ticket);
    expect(next.body.expires_in).toBe(7200);
  });

  it("R19: a ticket fetched with an expired token gets 42001", async () => {
    const h = await startEmulator({ tokenLifetimeSeconds: 60 });
    const token = tokenOf(await h.classic());
    await h.advance(60);
    const answer = await h.get("/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" });
    expect(errcodeOf(answer)).toBe(42001);
  });

  it("R20: jsapi and wx_card are separate per account, and token rotation keeps them", async () => {
    const h = await startEmulator();
    const fetch = async (access_token: string, type: string) =>
      (await h.get("/cgi-bin/ticket/getticket", { access_token, type })).body.ticket;
    const t1 = tokenOf(await h.classic());
    const jsapi = await fetch(t1, "jsapi");
    const card = await fetch(t1, "wx_card");
    expect(card).not.toBe(jsapi);
    const t2 = tokenOf(await h.classic());
    const t3 = tokenOf(await h.classic());
    expect(await fetch(t3, "jsapi")).toBe(jsapi);
    expect(await fetch(t2, "wx_card")).toBe(card);
    const other = tokenOf(await h.classic(OTHER_APPID, OTHER_SECRET));
    expect(await fetch(other, "jsapi")).not.toBe(jsapi);
  });

  it("R21: a missing or unknown type gets 40097 (configurable); no daily limit by default", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.classic());
    const queries: Record<string, string>[] = [
      { access_token: token },
      { access_token: token, type: "agent_config" },
    ];
    for (const query of queries) {
      const answer = await h.get("/cgi-bin/ticket/getticket", query);
      expect(errcodeOf(answer)).toBe(40097);
      expect(answer.body.errmsg).toMatch(/^invalid args rid: /);
    }
    const quota = await h.post(
      "/cgi-bin/openapi/quota/get",
      { cgi_path: "/cgi-bin/ticket/getticket" },
      { access_token: token },
    );
    expect(quota.body.quota).toEqual({ daily_limit: 2147483647, used: 0, remain: 2147483647 });
    h.emulator.control.setDailyLimit(APPID, "/cgi-bin/ticket/getticket", 1);
    const get = () => h.get("/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" });
    expect(errcodeOf(await get())).toBe(0);
    expect(errcodeOf(await get())).toBe(45009);

    const custom = await startEmulator({ unknownTicketTypeErrcode: 40002 });
    const t = tokenOf(await custom.classic());
    const answer = await custom.get("/cgi-bin/ticket/getticket", { access_token: t, type: "x" });
    expect(errcodeOf(answer)).toBe(40002);
  });
});

describe("validity probes", () => {
  it("R22: getcallbackip / get_api_domain_ip check the token and return ip_list", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.classic());
    for (const path of ["/cgi-bin/getcallbackip", "/cgi-bin/get_api_domain_ip"]) {
      const answer = await h.get(path, { access_token: token });
      expect(Object.keys(answer.body)).toEqual(["ip_list"]);
      expect((answer.body.ip_list as string[]).length).toBeGreaterThan(0);
      expect(errcodeOf(await h.get(path))).toBe(41001);
      expect(errcodeOf(await h.get(path, { access_token: "nope" }))).toBe(40001);
    }
  });

  it("R22: get_api_domain_ip allows 1000 calls a day; the 1001st gets 45009", async () => {
    const h = await startEmulator();
    const token = tokenOf(await h.classic());
    const quota = h.emulator.control.quota(APPID);
    expect(quota["/cgi-bin/get_api_domain_ip"].dailyLimit).toBe(1000);
    expect(quota["/cgi-bin/getcallbackip"].dailyLimit).toBeNull();
    const probe = () => h.get("/cgi-bin/get_api_domain_ip", { access_token: token });
    const answers = await many(1000, probe);
    expect(answers.filter((a) => errcodeOf(a) !== 0)).toEqual([]);
    expect(errcodeOf(await probe())).toBe(45009);
    // Each probe has its own counter.
    expect(errcodeOf(await h.get("/cgi-bin/getcallbackip", { access_token: token }))).toBe(0);
  });
});
