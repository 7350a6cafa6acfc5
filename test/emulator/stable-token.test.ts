import { describe, expect, it } from "vitest";
import { APPID, errcodeOf, many, SECRET, startEmulator, tokenOf } from "./harness.js";

describe("/cgi-bin/stable_token", () => {
  describe("R12: POST with a JSON body; the R4 checks apply", () => {
    it("GET gets 43002 'require POST method'", async () => {
      const h = await startEmulator();
      const answer = await h.get("/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid: APPID,
        secret: SECRET,
      });
      expect(errcodeOf(answer)).toBe(43002);
      expect(answer.body.errmsg).toMatch(/^require POST method rid: /);
    });

    const good = { grant_type: "client_credential", appid: APPID, secret: SECRET };
    const cases: Array<[string, number, unknown]> = [
      ["body not JSON", 47001, "appid=wx&secret=s"],
      ["body a JSON array", 47001, "[]"],
      ["grant_type missing", 40002, { appid: APPID, secret: SECRET }],
      ["appid missing", 41002, { grant_type: "client_credential", secret: SECRET }],
      ["secret missing", 41004, { grant_type: "client_credential", appid: APPID }],
      ["unknown appid", 40013, { ...good, appid: "wxnope" }],
      ["wrong secret", 40125, { ...good, secret: "wrong" }],
      ["parameters in the query only", 40002, undefined],
    ];
    it.each(cases)("%s → %i", async (_name, errcode, body) => {
      const h = await startEmulator();
      const answer = await h.post("/cgi-bin/stable_token", body, good);
      expect(errcodeOf(answer)).toBe(errcode);
    });

    it("whitelist, frozen secret and risk flags apply as on /cgi-bin/token", async () => {
      const h = await startEmulator();
      const { control } = h.emulator;
      control.setIpWhitelist(APPID, ["10.0.0.1"]);
      expect(errcodeOf(await h.stable())).toBe(40164);
      control.setIpWhitelist(APPID, null);
      control.freezeSecret(APPID);
      expect(errcodeOf(await h.stable())).toBe(40243);
      control.unfreezeSecret(APPID);
      control.setRiskState(APPID, "confirm_required");
      expect(errcodeOf(await h.stable())).toBe(89503);
    });
  });

  it("R13: the first normal call issues a token with expires_in 7200", async () => {
    const h = await startEmulator();
    const answer = await h.stable();
    expect(answer.body.expires_in).toBe(7200);
    expect(h.emulator.control.liveTokens()).toMatchObject([{ slot: "stable", role: "current" }]);
  });

  it("R14: while more than 300 s remain, the same token comes back with the remaining seconds", async () => {
    const h = await startEmulator();
    const s1 = tokenOf(await h.stable());
    await h.advance(10);
    const again = await h.stable();
    expect(tokenOf(again)).toBe(s1);
    expect(again.body.expires_in).toBe(7190);
    await h.clock.advance(6889_500); // 300.5 s left: still more than 300
    const late = await h.stable();
    expect(tokenOf(late)).toBe(s1);
    expect(late.body.expires_in).toBe(300);
  });

  it("R15: at exactly 300 s left a normal call rotates; the old token lives out its expiry", async () => {
    const h = await startEmulator();
    const s1 = tokenOf(await h.stable());
    await h.advance(6900);
    const rotated = await h.stable();
    const s2 = tokenOf(rotated);
    expect(s2).not.toBe(s1);
    expect(rotated.body.expires_in).toBe(7200);
    expect(tokenOf(await h.stable())).toBe(s2);
    await h.advance(299);
    expect(errcodeOf(await h.probe(s1))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await h.probe(s1))).toBe(42001);
    expect(errcodeOf(await h.probe(s2))).toBe(0);
  });

  it("R15: every normal-mode answer has expires_in ≥ 300", async () => {
    const h = await startEmulator();
    for (let t = 0; t < 3 * 7200; t += 450) {
      const answer = await h.stable();
      expect(answer.body.expires_in).toBeGreaterThanOrEqual(300);
      await h.advance(450);
    }
  });

  it("R16: force rotates; the previous token gets 300 s; two forces 30 s apart kill a leak", async () => {
    const h = await startEmulator();
    const leaked = tokenOf(await h.stable());
    const f1 = await h.stable(true);
    const s2 = tokenOf(f1);
    expect(s2).not.toBe(leaked);
    expect(f1.body.expires_in).toBe(7200);
    expect(errcodeOf(await h.probe(leaked))).toBe(0);
    await h.advance(30);
    const s3 = tokenOf(await h.stable(true));
    expect(s3).not.toBe(s2);
    expect(errcodeOf(await h.probe(leaked))).toBe(40001);
    expect(errcodeOf(await h.probe(s2))).toBe(0);
    await h.advance(299);
    expect(errcodeOf(await h.probe(s2))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await h.probe(s2))).toBe(40001);
    expect(errcodeOf(await h.probe(s3))).toBe(0);
  });

  it("R17: a force call within 30 s returns the current token and still counts", async () => {
    const h = await startEmulator();
    const s1 = tokenOf(await h.stable(true));
    await h.advance(29);
    const within = await h.stable(true);
    expect(tokenOf(within)).toBe(s1);
    expect(within.body.expires_in).toBe(7171);
    expect(h.emulator.control.quota(APPID)["/cgi-bin/stable_token#force"].used).toBe(2);
    await h.advance(1); // 30 s after the last rotating force call
    expect(tokenOf(await h.stable(true))).not.toBe(s1);

    const lenient = await startEmulator({ countForceWithinGap: false });
    await lenient.stable(true);
    await lenient.stable(true);
    expect(lenient.emulator.control.quota(APPID)["/cgi-bin/stable_token#force"].used).toBe(1);
  });

  it("R18: the 21st force call in a day gets 45009; normal calls still work", async () => {
    const h = await startEmulator();
    for (let i = 0; i < 20; i++) {
      expect(errcodeOf(await h.stable(true))).toBe(0);
      await h.advance(31);
    }
    expect(errcodeOf(await h.stable(true))).toBe(45009);
    expect(errcodeOf(await h.stable())).toBe(0);
  });

  it("R18: 10000 calls a minute and 500000 a day by default; over them → 45011 / 45009", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const entry = control.quota(APPID)["/cgi-bin/stable_token"];
    expect(entry.minuteLimit).toBe(10000);
    expect(entry.dailyLimit).toBe(500000);
    control.setMinuteLimit(APPID, "/cgi-bin/stable_token", 50);
    const answers = await many(51, () => h.stable());
    expect(answers.map(errcodeOf).filter((e) => e !== 0)).toEqual([45011]);
    control.setMinuteLimit(APPID, "/cgi-bin/stable_token", null);
    control.setDailyLimit(APPID, "/cgi-bin/stable_token", 51);
    expect(errcodeOf(await h.stable())).toBe(0);
    expect(errcodeOf(await h.stable())).toBe(45009);
  });
});
