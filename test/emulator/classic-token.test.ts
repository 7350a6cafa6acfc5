import { describe, expect, it } from "vitest";
import {
  APPID,
  errcodeOf,
  many,
  OTHER_APPID,
  OTHER_SECRET,
  SECRET,
  startEmulator,
  tokenOf,
} from "./harness.js";

describe("/cgi-bin/token", () => {
  describe("R4: parameter and account checks run in the documented order", () => {
    const ok = { grant_type: "client_credential", appid: APPID, secret: SECRET };
    const cases: Array<[string, number, Record<string, string>]> = [
      ["grant_type missing", 40002, { appid: APPID, secret: SECRET }],
      ["grant_type wrong, appid also missing", 40002, { grant_type: "password", secret: SECRET }],
      ["appid missing, secret also missing", 41002, { grant_type: "client_credential" }],
      [
        "secret missing, appid unknown",
        41004,
        { grant_type: "client_credential", appid: "wxnope" },
      ],
      ["unknown appid", 40013, { ...ok, appid: "wxnope" }],
      ["wrong secret", 40125, { ...ok, secret: "wrong" }],
    ];
    it.each(cases)("%s → %i", async (_name, errcode, query) => {
      const h = await startEmulator();
      expect(errcodeOf(await h.get("/cgi-bin/token", query))).toBe(errcode);
    });

    it("the IP whitelist is checked before every parameter (40164 names the caller)", async () => {
      const h = await startEmulator();
      h.emulator.control.setIpWhitelist(APPID, ["10.1.2.3"]);
      const answer = await h.get("/cgi-bin/token", { appid: APPID });
      expect(errcodeOf(answer)).toBe(40164);
      expect(answer.body.errmsg).toMatch(
        /^invalid ip 127\.0\.0\.1 ipv6 ::ffff:127\.0\.0\.1, not in whitelist rid: /,
      );
      h.emulator.control.setIpWhitelist(APPID, ["127.0.0.1"]);
      expect(errcodeOf(await h.classic())).toBe(0);
    });

    it("a component appid gets 61024 before its secret is checked", async () => {
      const h = await startEmulator();
      h.emulator.control.addApp({ appid: "wxcomponent", secret: "c", component: true });
      expect(errcodeOf(await h.classic("wxcomponent", "wrong"))).toBe(61024);
    });

    it("wrong secret wins over a frozen secret; a frozen one gets 40243", async () => {
      const h = await startEmulator();
      h.emulator.control.freezeSecret(APPID);
      expect(errcodeOf(await h.classic(APPID, "wrong"))).toBe(40125);
      expect(errcodeOf(await h.classic())).toBe(40243);
      h.emulator.control.unfreezeSecret(APPID);
      expect(errcodeOf(await h.classic())).toBe(0);
    });

    it("account flags follow: 50004 before 50007", async () => {
      const h = await startEmulator();
      h.emulator.control.setAccountFlags(APPID, { tokenForbidden: true, accountFrozen: true });
      expect(errcodeOf(await h.classic())).toBe(50004);
      h.emulator.control.setAccountFlags(APPID, { tokenForbidden: false });
      expect(errcodeOf(await h.classic())).toBe(50007);
      h.emulator.control.setAccountFlags(APPID, { accountFrozen: false });
      expect(errcodeOf(await h.classic())).toBe(0);
    });

    it("the risk flow answers 89503 once, then 89501; rejections give 89507 / 89506", async () => {
      const h = await startEmulator();
      const { control } = h.emulator;
      control.setRiskState(APPID, "confirm_required");
      expect(errcodeOf(await h.classic())).toBe(89503);
      expect(errcodeOf(await h.classic())).toBe(89501);
      control.setRiskState(APPID, "rejected");
      expect(errcodeOf(await h.classic())).toBe(89507);
      control.setRiskState(APPID, "blocked");
      expect(errcodeOf(await h.classic())).toBe(89506);
      control.setRiskState(APPID, "none");
      expect(errcodeOf(await h.classic())).toBe(0);
    });

    it("legacy mode answers a wrong secret with 40001", async () => {
      const h = await startEmulator({ wrongSecretErrcode: 40001 });
      expect(errcodeOf(await h.classic(APPID, "wrong"))).toBe(40001);
    });

    it("methods other than GET get 43001", async () => {
      const h = await startEmulator();
      const answer = await h.post(
        "/cgi-bin/token",
        {},
        { grant_type: "client_credential", appid: APPID, secret: SECRET },
      );
      expect(errcodeOf(answer)).toBe(43001);
    });
  });

  describe("R5: daily quota", () => {
    it("2000 successful calls a day; the 2001st gets 45009", async () => {
      const h = await startEmulator();
      const answers = await many(2000, () => h.classic());
      expect(answers.filter((a) => errcodeOf(a) !== 0)).toEqual([]);
      const over = await h.classic();
      expect(errcodeOf(over)).toBe(45009);
      expect(over.body.errmsg).toMatch(/^reach max api daily quota limit rid: /);
      // The other account has its own counter.
      expect(errcodeOf(await h.classic(OTHER_APPID, OTHER_SECRET))).toBe(0);
    });

    it("defaults depend on the account type: mini program 10000, test account 200", async () => {
      const h = await startEmulator({
        apps: [
          { appid: "wxmini", secret: "m", type: "mini_program" },
          { appid: "wxtest", secret: "t", type: "test_account" },
        ],
      });
      const { control } = h.emulator;
      expect(control.quota("wxmini")["/cgi-bin/token"].dailyLimit).toBe(10000);
      expect(control.quota("wxtest")["/cgi-bin/token"].dailyLimit).toBe(200);
      const answers = await many(201, () => h.classic("wxtest", "t"));
      expect(answers.map(errcodeOf).filter((e) => e !== 0)).toEqual([45009]);
    });

    it("failed calls do not use quota by default, and do when countFailedCalls is on", async () => {
      const off = await startEmulator();
      await off.classic(APPID, "wrong");
      expect(off.emulator.control.quota(APPID)["/cgi-bin/token"].used).toBe(0);
      const on = await startEmulator({ countFailedCalls: true });
      await on.classic(APPID, "wrong");
      await on.classic();
      expect(on.emulator.control.quota(APPID)["/cgi-bin/token"].used).toBe(2);
    });

    it("a configured minute limit answers 45011 until the next calendar minute", async () => {
      const h = await startEmulator();
      h.emulator.control.setMinuteLimit(APPID, "/cgi-bin/token", 2);
      expect(errcodeOf(await h.classic())).toBe(0);
      expect(errcodeOf(await h.classic())).toBe(0);
      const over = await h.classic();
      expect(errcodeOf(over)).toBe(45011);
      expect(over.body.errmsg).toMatch(
        /^api minute-quota reach limit mustslower retry next minute/,
      );
      await h.advance(60); // START is on a minute boundary
      expect(errcodeOf(await h.classic())).toBe(0);
    });
  });

  it("R6: every call issues a new token with expires_in 7200, even while the last is fresh", async () => {
    const h = await startEmulator();
    const first = await h.classic();
    const second = await h.classic();
    expect(first.body.expires_in).toBe(7200);
    expect(second.body.expires_in).toBe(7200);
    expect(tokenOf(second)).not.toBe(tokenOf(first));
    const short = await startEmulator({ tokenLifetimeSeconds: 60 });
    expect((await short.classic()).body.expires_in).toBe(60);
  });

  it("R7: the previous token works until exactly issue + 300 s, then 40001", async () => {
    const h = await startEmulator();
    const t1 = tokenOf(await h.classic());
    await h.advance(1000);
    const t2 = tokenOf(await h.classic());
    await h.advance(299);
    expect(errcodeOf(await h.probe(t1))).toBe(0);
    await h.clock.advance(999);
    expect(errcodeOf(await h.probe(t1))).toBe(0);
    await h.clock.advance(1);
    const late = await h.probe(t1);
    expect(errcodeOf(late)).toBe(40001);
    expect(late.body.errmsg).toMatch(
      /^invalid credential, access_token is invalid or not latest rid: /,
    );
    expect(errcodeOf(await h.probe(t2))).toBe(0);
  });

  it("R7: the grace period is capped by the previous token's own expiry", async () => {
    const h = await startEmulator();
    const t1 = tokenOf(await h.classic());
    await h.advance(7100);
    await h.classic();
    await h.advance(99);
    expect(errcodeOf(await h.probe(t1))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await h.probe(t1))).toBe(42001); // its expiry came first (R9)
  });

  it("R8: a token two generations back dies at once", async () => {
    const h = await startEmulator();
    const t1 = tokenOf(await h.classic());
    const t2 = tokenOf(await h.classic());
    expect(errcodeOf(await h.probe(t1))).toBe(0);
    const t3 = tokenOf(await h.classic());
    expect(errcodeOf(await h.probe(t1))).toBe(40001);
    expect(errcodeOf(await h.probe(t2))).toBe(0);
    expect(errcodeOf(await h.probe(t3))).toBe(0);
    expect(h.emulator.control.liveTokens().map((t) => [t.value, t.role])).toEqual([
      [t3, "current"],
      [t2, "grace"],
    ]);
  });

  it("R9: an expired token gets 42001; one superseded before expiring keeps 40001", async () => {
    const h = await startEmulator({ tokenLifetimeSeconds: 1000 });
    const t1 = tokenOf(await h.classic());
    await h.advance(999);
    expect(errcodeOf(await h.probe(t1))).toBe(0);
    await h.advance(1);
    const expired = await h.probe(t1);
    expect(errcodeOf(expired)).toBe(42001);
    expect(expired.body.errmsg).toMatch(/^access_token expired rid: /);

    const t2 = tokenOf(await h.classic());
    await h.advance(400);
    await h.classic();
    await h.advance(300); // t2 died at +700 s, before its expiry at +1000 s
    expect(errcodeOf(await h.probe(t2))).toBe(40001);
    await h.advance(1000); // past its expiry too: superseded first, so still 40001
    expect(errcodeOf(await h.probe(t2))).toBe(40001);
  });

  it("R10: never-issued → 40001 (40014 for a bad shape if configured); missing → 41001", async () => {
    const h = await startEmulator();
    const forged = `1_${"A".repeat(128)}`;
    expect(errcodeOf(await h.probe(forged))).toBe(40001);
    expect(errcodeOf(await h.probe("garbage"))).toBe(40001);
    expect(errcodeOf(await h.get("/cgi-bin/getcallbackip"))).toBe(41001);
    const strict = await startEmulator({ malformedTokenErrcode: 40014 });
    expect(errcodeOf(await strict.probe("garbage"))).toBe(40014);
    expect(errcodeOf(await strict.probe(forged))).toBe(40001);
  });

  it("R11: classic and stable slots and quotas are isolated", async () => {
    const h = await startEmulator();
    const stable = tokenOf(await h.stable());
    const c1 = tokenOf(await h.classic());
    await h.classic();
    await h.classic(); // c1 is now two generations back
    expect(errcodeOf(await h.probe(c1))).toBe(40001);
    expect(errcodeOf(await h.probe(stable))).toBe(0);
    expect(tokenOf(await h.stable())).toBe(stable);
    await h.stable(true);
    await h.advance(31);
    await h.stable(true); // stable rotated twice
    const c4 = tokenOf(await h.classic());
    expect(errcodeOf(await h.probe(c4))).toBe(0);
    const quota = h.emulator.control.quota(APPID);
    expect(quota["/cgi-bin/token"].used).toBe(4);
    expect(quota["/cgi-bin/stable_token"].used).toBe(4);
  });
});
