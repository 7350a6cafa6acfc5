import { describe, expect, it } from "vitest";
import type { EmulatorOptions, WecomCorpSpec } from "../../src/emulator/index.js";
import { type Answer, errcodeOf, type Harness, startEmulator, tokenOf } from "./harness.js";

const GETTOKEN = "/cgi-bin/gettoken";
const CORP_TICKET = "/cgi-bin/get_jsapi_ticket";
const AGENT_TICKET = "/cgi-bin/ticket/get";
const AGENT_GET = "/cgi-bin/agent/get";

const CORPID = "ww0000000000000001";
const OTHER_CORPID = "ww0000000000000002";
const SECRET_A = "a".repeat(43);
const SECRET_B = "b".repeat(43);
const SECRET_CONTACTS = "c".repeat(43);
const SECRET_OTHER = "o".repeat(43);

const CORPS: WecomCorpSpec[] = [
  {
    corpid: CORPID,
    apps: [
      { agentid: 1000001, secret: SECRET_A },
      { agentid: 1000002, secret: SECRET_B },
      { name: "contacts", secret: SECRET_CONTACTS },
    ],
  },
  { corpid: OTHER_CORPID, apps: [{ agentid: 1000001, secret: SECRET_OTHER }] },
];

function start(wecom: EmulatorOptions["wecom"] = {}): Promise<Harness> {
  return startEmulator({ wecom: { corps: CORPS, ...wecom } });
}

const gettoken = (h: Harness, secret = SECRET_A, corpid = CORPID) =>
  h.get(GETTOKEN, { corpid, corpsecret: secret });
const corpTicket = (h: Harness, token: string) => h.get(CORP_TICKET, { access_token: token });
const agentTicket = (h: Harness, token: string) =>
  h.get(AGENT_TICKET, { access_token: token, type: "agent_config" });
const agentGet = (h: Harness, token: string, agentid: number) =>
  h.get(AGENT_GET, { access_token: token, agentid: String(agentid) });

function ticketOf(answer: Answer): string {
  const t = answer.body.ticket;
  if (typeof t !== "string")
    throw new Error(`expected a ticket, got ${JSON.stringify(answer.body)}`);
  return t;
}

describe("R28/R29: /cgi-bin/gettoken", () => {
  it("answers errcode 0 with the token and expires_in 7200 (R2)", async () => {
    const h = await start();
    const answer = await gettoken(h);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    expect(Object.keys(answer.body).sort()).toEqual(
      ["access_token", "errcode", "errmsg", "expires_in"].sort(),
    );
    expect(tokenOf(answer).length).toBeLessThanOrEqual(512);
  });

  it("returns the same token within validity (expires_in = remaining), a new one after expiry", async () => {
    const h = await start();
    const first = tokenOf(await gettoken(h));
    await h.advance(100);
    const again = await gettoken(h);
    expect(tokenOf(again)).toBe(first);
    expect(again.body.expires_in).toBe(7100);
    await h.advance(7100);
    const next = await gettoken(h);
    expect(tokenOf(next)).not.toBe(first);
    expect(next.body.expires_in).toBe(7200);
  });

  it('expiresIn: "full" answers 7200 on a repeat call', async () => {
    const h = await start({ expiresIn: "full" });
    const first = tokenOf(await gettoken(h));
    await h.advance(100);
    const again = await gettoken(h);
    expect(tokenOf(again)).toBe(first);
    expect(again.body.expires_in).toBe(7200);
  });

  it("two apps of one corp get different tokens, each valid only for its own app (301002, C10)", async () => {
    const h = await start();
    const a = tokenOf(await gettoken(h, SECRET_A));
    const b = tokenOf(await gettoken(h, SECRET_B));
    expect(a).not.toBe(b);
    expect(await agentGet(h, a, 1000001)).toMatchObject({ body: { errcode: 0, agentid: 1000001 } });
    expect(errcodeOf(await agentGet(h, a, 1000002))).toBe(301002);
    expect(errcodeOf(await agentGet(h, b, 1000002))).toBe(0);
    expect(errcodeOf(await agentGet(h, b, 1000001))).toBe(301002);
    const contacts = tokenOf(await gettoken(h, SECRET_CONTACTS));
    expect(errcodeOf(await agentGet(h, contacts, 1000001))).toBe(301002);
  });

  it.each([
    ["missing corpid", { corpsecret: SECRET_A }, 41002],
    ["missing secret", { corpid: CORPID }, 41004],
    ["unknown corpid", { corpid: "ww-nobody", corpsecret: SECRET_A }, 40013],
    ["wrong secret", { corpid: CORPID, corpsecret: "x".repeat(43) }, 40001],
    ["another corp's secret", { corpid: CORPID, corpsecret: SECRET_OTHER }, 40091],
  ])("%s → %i", async (_name, query, errcode) => {
    const h = await start();
    const answer = await h.get(GETTOKEN, query as Record<string, string>);
    expect(answer.status).toBe(200);
    expect(errcodeOf(answer)).toBe(errcode);
    expect(answer.body.errmsg).toMatch(/, hint: \[.+\], from ip: 127\.0\.0\.1/);
  });

  it("60020 names the caller's IP when the app trusts other IPs", async () => {
    const h = await start();
    h.emulator.control.updateWecomApp(CORPID, "1000001", { trustedIps: ["203.0.113.7"] });
    const answer = await gettoken(h);
    expect(errcodeOf(answer)).toBe(60020);
    expect(answer.body.errmsg).toMatch(
      /^not allow to access from your ip, .*from ip: 127\.0\.0\.1/,
    );
    h.emulator.control.updateWecomApp(CORPID, "1000001", { trustedIps: ["127.0.0.1"] });
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });

  it("50003 for a disabled app, 48002 for an API it may not call", async () => {
    const h = await start();
    const token = tokenOf(await gettoken(h));
    h.emulator.control.updateWecomApp(CORPID, "1000001", { permitted: [CORP_TICKET] });
    expect(errcodeOf(await corpTicket(h, token))).toBe(0);
    expect(errcodeOf(await agentTicket(h, token))).toBe(48002);
    h.emulator.control.updateWecomApp(CORPID, "1000001", { disabled: true });
    expect(errcodeOf(await gettoken(h))).toBe(50003);
    expect(errcodeOf(await corpTicket(h, token))).toBe(50003);
  });

  it("-1 busy through fault injection, WeCom-shaped", async () => {
    const h = await start();
    h.emulator.control.injectFault({
      endpoint: GETTOKEN,
      appid: CORPID,
      times: 1,
      action: { type: "errcode", errcode: -1 },
    });
    const busy = await gettoken(h);
    expect(errcodeOf(busy)).toBe(-1);
    expect(busy.body.errmsg).toMatch(/from ip: 127\.0\.0\.1/);
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });

  it("counts calls per corp and per app", async () => {
    const h = await start();
    await gettoken(h, SECRET_A);
    await gettoken(h, SECRET_A);
    await gettoken(h, SECRET_B);
    await gettoken(h, SECRET_OTHER, OTHER_CORPID);
    await gettoken(h, "wrong");
    const c = h.emulator.control;
    expect(c.callCount(GETTOKEN)).toBe(5);
    expect(c.callCount(GETTOKEN, CORPID)).toBe(4);
    expect(c.callCount(GETTOKEN, `${CORPID}/1000001`)).toBe(2);
    expect(c.callCount(GETTOKEN, `${CORPID}/1000002`)).toBe(1);
    expect(c.callCount(GETTOKEN, OTHER_CORPID)).toBe(1);
    expect(c.counters()[GETTOKEN]?.[CORPID]?.errors).toEqual({ "40001": 1 });
  });
});

describe("R30: stale tokens", () => {
  it("42001 after expiry; 40014 for a token never issued and for an official-account token", async () => {
    const h = await start();
    const token = tokenOf(await gettoken(h));
    const classic = tokenOf(await h.classic());
    expect(errcodeOf(await corpTicket(h, classic))).toBe(40014);
    expect(errcodeOf(await corpTicket(h, "nonsense"))).toBe(40014);
    expect(errcodeOf(await h.get(CORP_TICKET))).toBe(41001);
    expect(errcodeOf(await h.probe(token))).toBe(40001);
    await h.advance(7200);
    expect(errcodeOf(await corpTicket(h, token))).toBe(42001);
  });

  it("early invalidation: 40014, then gettoken issues a new token (HTTP control)", async () => {
    const h = await start();
    const token = tokenOf(await gettoken(h));
    const res = await fetch(`${h.url}/_emulator/wecom/tokens/invalidate`, {
      method: "POST",
      body: JSON.stringify({ access_token: token }),
    });
    expect(res.status).toBe(200);
    expect(errcodeOf(await corpTicket(h, token))).toBe(40014);
    const next = tokenOf(await gettoken(h));
    expect(next).not.toBe(token);
    expect(errcodeOf(await corpTicket(h, next))).toBe(0);
    expect(() => h.emulator.control.invalidateWecomToken(token)).toThrow(/no live/);
    expect(h.emulator.control.wecomTokens().map((t) => t.value)).toEqual([next]);
  });

  it("a new secret kills the app's tokens; the old secret gets 40001", async () => {
    const h = await start();
    const token = tokenOf(await gettoken(h));
    h.emulator.control.updateWecomApp(CORPID, "1000001", { secret: "n".repeat(43) });
    expect(errcodeOf(await corpTicket(h, token))).toBe(40014);
    expect(errcodeOf(await gettoken(h))).toBe(40001);
    expect(errcodeOf(await gettoken(h, "n".repeat(43)))).toBe(0);
  });
});

describe("R32: tickets", () => {
  it("corp ticket per corp, agent ticket per app; errcode 0; same within validity", async () => {
    const h = await start();
    const a = tokenOf(await gettoken(h, SECRET_A));
    const b = tokenOf(await gettoken(h, SECRET_B));
    const corpA = await corpTicket(h, a);
    expect(corpA.body).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    expect(ticketOf(await corpTicket(h, b))).toBe(ticketOf(corpA));
    const agentA = await agentTicket(h, a);
    expect(agentA.body).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    const agentB = ticketOf(await agentTicket(h, b));
    expect(agentB).not.toBe(ticketOf(agentA));
    expect(agentB).not.toBe(ticketOf(corpA));
    await h.advance(60);
    const again = await agentTicket(h, a);
    expect(ticketOf(again)).toBe(ticketOf(agentA));
    expect(again.body.expires_in).toBe(7140);
    const listed = h.emulator.control.wecomTickets();
    expect(listed.map((t) => `${t.kind}:${t.app ?? ""}`).sort()).toEqual(
      ["agent_config:1000001", "agent_config:1000002", "corp:"].sort(),
    );
  });

  it("agent ticket: wrong type → 40058; a corp-level secret's token → 48002", async () => {
    const h = await start();
    const a = tokenOf(await gettoken(h, SECRET_A));
    expect(errcodeOf(await h.get(AGENT_TICKET, { access_token: a, type: "jsapi" }))).toBe(40058);
    const contacts = tokenOf(await gettoken(h, SECRET_CONTACTS));
    expect(errcodeOf(await agentTicket(h, contacts))).toBe(48002);
  });
});

describe("R31/R32: limits", () => {
  it("per (corp, API) minute limit → 45009 and a 60 s block, then lifted", async () => {
    const h = await start({ limits: { perMinute: 3 } });
    for (let i = 0; i < 3; i++) expect(errcodeOf(await gettoken(h))).toBe(0);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    // Another corp and another API of this corp are not blocked.
    expect(errcodeOf(await gettoken(h, SECRET_OTHER, OTHER_CORPID))).toBe(0);
    const token = h.emulator.control.wecomTokens()[0]?.value as string;
    expect(errcodeOf(await corpTicket(h, token))).toBe(0);
    await h.advance(59);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    await h.advance(1);
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });

  it("per (corp, API) hour limit → 45009 and a 60 min block", async () => {
    const h = await start({ limits: { perHour: 4 } });
    for (let i = 0; i < 4; i++) {
      expect(errcodeOf(await gettoken(h))).toBe(0);
      await h.advance(61);
    }
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    await h.advance(3599);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    await h.advance(1);
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });

  it("tickets: > per-app hourly allowance → 45009 for that app only", async () => {
    const h = await start({ limits: { ticketsPerAppHour: 2 } });
    const a = tokenOf(await gettoken(h, SECRET_A));
    const b = tokenOf(await gettoken(h, SECRET_B));
    expect(errcodeOf(await agentTicket(h, a))).toBe(0);
    expect(errcodeOf(await corpTicket(h, a))).toBe(0);
    expect(errcodeOf(await agentTicket(h, a))).toBe(45009);
    expect(errcodeOf(await agentTicket(h, b))).toBe(0);
    await h.advance(3600);
    const fresh = tokenOf(await gettoken(h, SECRET_A));
    expect(errcodeOf(await agentTicket(h, fresh))).toBe(0);
  });

  it("tickets: > per-corp hourly allowance → 45009 for every app of the corp", async () => {
    const h = await start({ limits: { ticketsPerCorpHour: 3 } });
    const a = tokenOf(await gettoken(h, SECRET_A));
    const b = tokenOf(await gettoken(h, SECRET_B));
    expect(errcodeOf(await corpTicket(h, a))).toBe(0);
    expect(errcodeOf(await agentTicket(h, a))).toBe(0);
    expect(errcodeOf(await agentTicket(h, b))).toBe(0);
    expect(errcodeOf(await agentTicket(h, b))).toBe(45009);
    expect(errcodeOf(await corpTicket(h, a))).toBe(45009);
    const other = tokenOf(await gettoken(h, SECRET_OTHER, OTHER_CORPID));
    expect(errcodeOf(await corpTicket(h, other))).toBe(0);
  });

  it("default ticket limits are 400 per corp and 100 per app an hour", async () => {
    const h = await start();
    expect(h.emulator.control.wecomLimits()).toEqual({
      perMinute: 10_000,
      perHour: 150_000,
      ticketsPerCorpHour: 400,
      ticketsPerAppHour: 100,
      failedGettokenPerHour: 2000,
    });
    const a = tokenOf(await gettoken(h, SECRET_A));
    for (let i = 0; i < 100; i++) expect(errcodeOf(await corpTicket(h, a))).toBe(0);
    expect(errcodeOf(await corpTicket(h, a))).toBe(45009);
  });

  it("failed gettoken calls up to the limit block gettoken for the corp for 1 h", async () => {
    const h = await start({ limits: { failedGettokenPerHour: 5 } });
    for (let i = 0; i < 5; i++) expect(errcodeOf(await gettoken(h, "wrong"))).toBe(40001);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    expect(errcodeOf(await gettoken(h, SECRET_OTHER, OTHER_CORPID))).toBe(0);
    await h.advance(3599);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    await h.advance(1);
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });

  it("the failures block can be turned off; limits can be set over HTTP", async () => {
    const h = await start({ limits: { failedGettokenPerHour: null } });
    for (let i = 0; i < 10; i++) await gettoken(h, "wrong");
    expect(errcodeOf(await gettoken(h))).toBe(0);
    const res = await fetch(`${h.url}/_emulator/wecom/limits`, {
      method: "POST",
      body: JSON.stringify({ perMinute: 1 }),
    });
    expect(res.status).toBe(200);
    expect(errcodeOf(await gettoken(h))).toBe(45009);
    const badLimit = await fetch(`${h.url}/_emulator/wecom/limits`, {
      method: "POST",
      body: JSON.stringify({ perMinute: -1 }),
    });
    expect(badLimit.status).toBe(400);
  });
});

describe("control", () => {
  it("adds, lists, patches and removes corps and apps over HTTP", async () => {
    const h = await startEmulator();
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${h.url}/_emulator/wecom${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as unknown };
    };
    expect((await call("POST", "/corps", { corpid: "ww9", apps: [] })).status).toBe(201);
    expect((await call("POST", "/corps/ww9/apps", { agentid: 7, secret: SECRET_A })).status).toBe(
      201,
    );
    expect((await call("POST", "/corps/ww9/apps", { agentid: 7, secret: "x" })).status).toBe(409);
    expect((await call("GET", "/corps/ww9")).body).toEqual([
      { corpid: "ww9", app: "7", agentid: 7, trustedIps: null, permitted: true, disabled: false },
    ]);
    const token = tokenOf(await gettoken(h, SECRET_A, "ww9"));
    expect((await call("PATCH", "/corps/ww9/apps/7", { disabled: true })).status).toBe(200);
    expect(errcodeOf(await gettoken(h, SECRET_A, "ww9"))).toBe(50003);
    expect((await call("GET", "/tokens")).body).toMatchObject([{ corpid: "ww9", value: token }]);
    expect((await call("DELETE", "/corps/ww9/apps/7")).status).toBe(200);
    expect(errcodeOf(await corpTicket(h, token))).toBe(40014);
    expect((await call("DELETE", "/corps/ww9")).status).toBe(200);
    expect(errcodeOf(await gettoken(h, SECRET_A, "ww9"))).toBe(40013);
    expect((await call("DELETE", "/corps/ww9")).status).toBe(404);
  });

  it("reset restores the configured corps and forgets tokens", async () => {
    const h = await start();
    const token = tokenOf(await gettoken(h));
    h.emulator.control.removeWecomCorp(CORPID);
    h.emulator.control.reset();
    expect(h.emulator.control.wecomTokens()).toEqual([]);
    expect(errcodeOf(await corpTicket(h, token))).toBe(40014);
    expect(errcodeOf(await gettoken(h))).toBe(0);
  });
});
