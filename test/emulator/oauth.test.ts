import { describe, expect, it } from "vitest";
import type { OAuthUserSpec } from "../../src/emulator/index.js";
import {
  type Answer,
  APPID,
  errcodeOf,
  type Harness,
  OTHER_APPID,
  OTHER_SECRET,
  SECRET,
  startEmulator,
  tokenOf,
} from "./harness.js";

const EXCHANGE = "/sns/oauth2/access_token";
const REFRESH = "/sns/oauth2/refresh_token";
const AUTH = "/sns/auth";
const DAY = 86_400;
const ALICE: OAuthUserSpec = { openid: "o-alice-0000000000000000000", scope: "snsapi_base" };

/** Plays "the user authorizes APPID" (or `appid`) and returns the code. */
function authorize(h: Harness, user: OAuthUserSpec = ALICE, appid = APPID): string {
  return h.emulator.control.authorizeUser(appid, user).code;
}

const exchange = (h: Harness, code: string, appid = APPID, secret = SECRET) =>
  h.get(EXCHANGE, { appid, secret, code, grant_type: "authorization_code" });
const refresh = (h: Harness, refreshToken: string, appid = APPID) =>
  h.get(REFRESH, { appid, grant_type: "refresh_token", refresh_token: refreshToken });
const snsAuth = (h: Harness, accessToken: string, openid = ALICE.openid) =>
  h.get(AUTH, { access_token: accessToken, openid });

function field(answer: Answer, name: string): string {
  const value = answer.body[name];
  if (typeof value !== "string") throw new Error(`no ${name} in ${JSON.stringify(answer.body)}`);
  return value;
}

/** Authorizes ALICE and exchanges the code: the first access and refresh tokens. */
async function signIn(h: Harness, user: OAuthUserSpec = ALICE) {
  const answer = await exchange(h, authorize(h, user));
  return { access: tokenOf(answer), refresh: field(answer, "refresh_token") };
}

async function admin(h: Harness, method: string, path: string, body?: unknown) {
  const res = await fetch(`${h.url}/_emulator${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("R33/R34: /sns/oauth2/access_token", () => {
  it("exchanges a code for the user's tokens; the success body has no errcode (R2)", async () => {
    const h = await startEmulator();
    const answer = await exchange(h, authorize(h));
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(Object.keys(answer.body).sort()).toEqual(
      ["access_token", "expires_in", "openid", "refresh_token", "scope"].sort(),
    );
    expect(answer.body).toMatchObject({
      expires_in: 7200,
      openid: ALICE.openid,
      scope: "snsapi_base",
    });
    expect(tokenOf(answer).length).toBeGreaterThanOrEqual(64);
    expect(field(answer, "refresh_token")).not.toBe(tokenOf(answer));
  });

  it("unionid only for snsapi_userinfo users that have one; is_snapshotuser only for snapshot users", async () => {
    const h = await startEmulator();
    const base = await exchange(h, authorize(h, { ...ALICE, unionid: "u-alice" }));
    expect(base.body).not.toHaveProperty("unionid");
    const info = await exchange(
      h,
      authorize(h, { openid: "o-bob", scope: "snsapi_userinfo", unionid: "u-bob" }),
    );
    expect(info.body).toMatchObject({ scope: "snsapi_userinfo", unionid: "u-bob" });
    expect(info.body).not.toHaveProperty("is_snapshotuser");
    expect(info.body).not.toHaveProperty("errcode");
    const noUnion = await exchange(h, authorize(h, { openid: "o-eve", scope: "snsapi_userinfo" }));
    expect(noUnion.body).not.toHaveProperty("unionid");
    const snap = await exchange(h, authorize(h, { ...ALICE, snapshot: true }));
    expect(snap.body).toMatchObject({ is_snapshotuser: 1 });
  });

  it("a code works once: the second use gets 40163 code been used", async () => {
    const h = await startEmulator();
    const code = authorize(h);
    expect(errcodeOf(await exchange(h, code))).toBe(0);
    const again = await exchange(h, code);
    expect(errcodeOf(again)).toBe(40163);
    expect(again.body.errmsg).toMatch(/^code been used rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    expect(h.emulator.control.counters()[EXCHANGE]?.[APPID]).toMatchObject({
      calls: 2,
      successes: 1,
      errors: { "40163": 1 },
    });
  });

  it("a code lives 300 s on the injected clock: 40029 from then on, used or not", async () => {
    const h = await startEmulator();
    const early = authorize(h);
    const late = authorize(h);
    await h.advance(299);
    expect(errcodeOf(await exchange(h, early))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await exchange(h, late))).toBe(40029);
    expect(errcodeOf(await exchange(h, early))).toBe(40029);
  });

  it("the expired-code errcode can be 42003; website apps' codes live 600 s; per-app override", async () => {
    const legacy = await startEmulator({ oauth: { expiredCodeErrcode: 42003 } });
    const code = authorize(legacy);
    await legacy.advance(300);
    expect(errcodeOf(await exchange(legacy, code))).toBe(42003);

    const h = await startEmulator({
      apps: [{ appid: "wxweb", secret: "web-secret", type: "website_app" }],
    });
    const web = h.emulator.control.authorizeUser("wxweb", ALICE);
    expect(web.expiresAt - web.issuedAt).toBe(600_000);
    await h.advance(599);
    expect(errcodeOf(await exchange(h, web.code, "wxweb", "web-secret"))).toBe(0);
    const web2 = authorize(h, ALICE, "wxweb");
    await h.advance(600);
    expect(errcodeOf(await exchange(h, web2, "wxweb", "web-secret"))).toBe(40029);

    h.emulator.control.setOAuthSettings("wxweb", { codeTtlSeconds: 10 });
    const short = authorize(h, ALICE, "wxweb");
    await h.advance(10);
    expect(errcodeOf(await exchange(h, short, "wxweb", "web-secret"))).toBe(40029);
  });

  it("an unknown code or one minted for another appid gets 40029 and stays usable by its own", async () => {
    const h = await startEmulator();
    expect(errcodeOf(await exchange(h, "never-minted-code-0000000000000"))).toBe(40029);
    const theirs = authorize(h, ALICE, OTHER_APPID);
    expect(errcodeOf(await exchange(h, theirs))).toBe(40029);
    expect(errcodeOf(await exchange(h, theirs, OTHER_APPID, OTHER_SECRET))).toBe(0);
  });

  it("parameter and account errors as on /cgi-bin/token; they leave the code unused", async () => {
    const h = await startEmulator();
    const code = authorize(h);
    const call = (q: Record<string, string>) => h.get(EXCHANGE, q);
    const full = { appid: APPID, secret: SECRET, code, grant_type: "authorization_code" };
    expect(errcodeOf(await call({ ...full, grant_type: "client_credential" }))).toBe(40002);
    expect(errcodeOf(await call({ ...full, appid: "" }))).toBe(41002);
    expect(errcodeOf(await call({ ...full, secret: "" }))).toBe(41004);
    expect(errcodeOf(await call({ ...full, appid: "wx-unknown" }))).toBe(40013);
    expect(errcodeOf(await call({ ...full, secret: "wrong" }))).toBe(40125);
    expect(errcodeOf(await call({ ...full, code: "" }))).toBe(41008);
    h.emulator.control.freezeSecret(APPID);
    expect(errcodeOf(await call(full))).toBe(40243);
    h.emulator.control.unfreezeSecret(APPID);
    expect(errcodeOf(await h.post(EXCHANGE, {}, full))).toBe(43001);
    expect(errcodeOf(await call(full))).toBe(0);

    const legacy = await startEmulator({ wrongSecretErrcode: 40001 });
    expect(errcodeOf(await exchange(legacy, authorize(legacy), APPID, "wrong"))).toBe(40001);
  });
});

describe("R35/C7: /sns/oauth2/refresh_token", () => {
  it("before the access token expires: the same token, its expiry moved to now + 7200", async () => {
    const h = await startEmulator();
    const first = await signIn(h);
    await h.advance(7000);
    const answer = await refresh(h, first.refresh);
    expect(answer.body).toEqual({
      access_token: first.access,
      expires_in: 7200,
      refresh_token: first.refresh,
      openid: ALICE.openid,
      scope: "snsapi_base",
    });
    // Past the original expiry (7200) the token still works, until 7000 + 7200.
    await h.advance(7199);
    expect(errcodeOf(await snsAuth(h, first.access))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await snsAuth(h, first.access))).toBe(42001);
  });

  it("after the access token expired: a new one; the old one stays 42001", async () => {
    const h = await startEmulator();
    const first = await signIn(h);
    await h.advance(7200);
    const answer = await refresh(h, first.refresh);
    expect(errcodeOf(answer)).toBe(0);
    const second = tokenOf(answer);
    expect(second).not.toBe(first.access);
    expect(field(answer, "refresh_token")).toBe(first.refresh);
    expect(answer.body.expires_in).toBe(7200);
    expect(errcodeOf(await snsAuth(h, second))).toBe(0);
    expect(errcodeOf(await snsAuth(h, first.access))).toBe(42001);
    const [grant] = h.emulator.control.oauthGrants(APPID, ALICE.openid);
    expect(grant).toMatchObject({ accessToken: second, refreshes: 1, accessTokenErrcode: 0 });
  });

  it("the refresh token is never extended: 42002 at day 30 even after refreshes", async () => {
    const h = await startEmulator();
    const { refresh: rt } = await signIn(h);
    let day = 0;
    for (const next of [1, 10, 20, 29]) {
      await h.advance((next - day) * DAY);
      day = next;
      expect(errcodeOf(await refresh(h, rt))).toBe(0);
    }
    await h.advance(DAY - 1); // 30 days minus one second after sign-in
    expect(errcodeOf(await refresh(h, rt))).toBe(0);
    await h.advance(1);
    const expired = await refresh(h, rt);
    expect(errcodeOf(expired)).toBe(42002);
    const [grant] = h.emulator.control.oauthGrants(APPID, ALICE.openid);
    expect(grant?.refreshTokenExpiresAt).toBe(
      grant && grant.refreshTokenIssuedAt + 30 * DAY * 1000,
    );
    expect(grant?.refreshes).toBe(5);
  });

  it("mobile apps' refresh tokens live 180 days; the life is configurable per app", async () => {
    const h = await startEmulator({
      apps: [
        { appid: "wxmobile", secret: "mobile-secret", type: "mobile_app" },
        { appid: APPID, secret: SECRET },
      ],
    });
    const code = authorize(h, ALICE, "wxmobile");
    const rt = field(await exchange(h, code, "wxmobile", "mobile-secret"), "refresh_token");
    await h.advance(180 * DAY - 1);
    expect(errcodeOf(await refresh(h, rt, "wxmobile"))).toBe(0);
    await h.advance(1);
    expect(errcodeOf(await refresh(h, rt, "wxmobile"))).toBe(42002);

    h.emulator.control.setOAuthSettings(APPID, { refreshTokenTtlSeconds: 60 });
    expect(h.emulator.control.oauthSettings(APPID)).toEqual({
      codeTtlSeconds: 300,
      refreshTokenTtlSeconds: 60,
      minuteLimit: 50000,
    });
    const short = await signIn(h);
    await h.advance(60);
    expect(errcodeOf(await refresh(h, short.refresh))).toBe(42002);
  });

  it("unknown → 40030, missing → 41003, another app's → 40030, wrong grant_type → 40002", async () => {
    const h = await startEmulator();
    const { refresh: rt } = await signIn(h);
    expect(errcodeOf(await refresh(h, "1_not-a-refresh-token"))).toBe(40030);
    expect(errcodeOf(await refresh(h, ""))).toBe(41003);
    expect(errcodeOf(await refresh(h, rt, OTHER_APPID))).toBe(40030);
    expect(errcodeOf(await refresh(h, rt, "wx-unknown"))).toBe(40013);
    const wrongGrant = await h.get(REFRESH, {
      appid: APPID,
      grant_type: "authorization_code",
      refresh_token: rt,
    });
    expect(errcodeOf(wrongGrant)).toBe(40002);
    expect(errcodeOf(await refresh(h, rt))).toBe(0);
  });

  it("control: expire → 42002, void → 40030 (by refresh token or by openid)", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const a = await signIn(h);
    const b = await signIn(h);
    expect(control.expireRefreshToken(APPID, { refreshToken: a.refresh })).toBe(1);
    expect(errcodeOf(await refresh(h, a.refresh))).toBe(42002);
    expect(errcodeOf(await refresh(h, b.refresh))).toBe(0);
    expect(control.voidRefreshToken(APPID, { openid: ALICE.openid })).toBe(2);
    // a expired before it was voided: the earlier event decides.
    expect(errcodeOf(await refresh(h, a.refresh))).toBe(42002);
    expect(errcodeOf(await refresh(h, b.refresh))).toBe(40030);
    // Voiding the refresh token leaves the access token alone.
    expect(errcodeOf(await snsAuth(h, b.access))).toBe(0);
    expect(() => control.voidRefreshToken(APPID, { openid: "o-nobody" })).toThrow(
      /no grant matches/,
    );
  });

  it("a password change voids both tokens: refresh → 42007, /sns/auth → 40001 (42001 if expired first)", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const stale = await signIn(h);
    await h.advance(7200); // stale.access has expired
    const fresh = await signIn(h);
    const other = await signIn(h, { openid: "o-bob", scope: "snsapi_base" });
    expect(control.changeUserPassword(APPID, ALICE.openid)).toBe(2);
    expect(errcodeOf(await refresh(h, fresh.refresh))).toBe(42007);
    expect(errcodeOf(await refresh(h, stale.refresh))).toBe(42007);
    expect(errcodeOf(await snsAuth(h, fresh.access))).toBe(40001);
    expect(errcodeOf(await snsAuth(h, stale.access))).toBe(42001);
    expect(errcodeOf(await snsAuth(h, other.access, "o-bob"))).toBe(0);
    expect(control.oauthGrants(APPID, ALICE.openid).map((g) => g.refreshTokenErrcode)).toEqual([
      42007, 42007,
    ]);
  });
});

describe("R36: /sns/auth", () => {
  it("a valid pair → errcode 0; wrong or missing openid → 40003; unknown → 40001; expired → 42001", async () => {
    const h = await startEmulator();
    const { access } = await signIn(h);
    expect((await snsAuth(h, access)).body).toEqual({ errcode: 0, errmsg: "ok" });
    expect(errcodeOf(await snsAuth(h, access, "o-someone-else"))).toBe(40003);
    expect(errcodeOf(await h.get(AUTH, { access_token: access }))).toBe(40003);
    expect(errcodeOf(await snsAuth(h, "1_unknown"))).toBe(40001);
    expect(errcodeOf(await h.get(AUTH, { openid: ALICE.openid }))).toBe(41001);
    await h.advance(7200);
    expect(errcodeOf(await snsAuth(h, access))).toBe(42001);
  });

  it("basic and user tokens do not cross: each is 40001 on the other's APIs", async () => {
    const h = await startEmulator();
    const basic = tokenOf(await h.classic());
    const { access } = await signIn(h);
    expect(errcodeOf(await snsAuth(h, basic))).toBe(40001);
    expect(errcodeOf(await h.probe(access))).toBe(40001);
    expect(h.emulator.control.callCount(AUTH, APPID)).toBe(0); // basic token: no owner
    expect(h.emulator.control.callCount(AUTH)).toBe(1);
  });
});

describe("R37: per-minute limit, no daily quota", () => {
  it("over the minute limit → 45011 until the next calendar minute, per app and endpoint", async () => {
    const h = await startEmulator({ oauth: { minuteLimit: 3 } });
    const { refresh: rt } = await signIn(h); // 1 exchange call
    expect(errcodeOf(await exchange(h, "unknown-code-000000000000000000"))).toBe(40029); // 2
    expect(errcodeOf(await exchange(h, authorize(h)))).toBe(0); // 3
    const over = await exchange(h, authorize(h));
    expect(errcodeOf(over)).toBe(45011);
    expect(over.body.errmsg).toMatch(/^api minute-quota reach limit mustslower retry next minute/);
    // The refresh endpoint and the other account have their own counters.
    expect(errcodeOf(await refresh(h, rt))).toBe(0);
    expect(
      errcodeOf(await exchange(h, authorize(h, ALICE, OTHER_APPID), OTHER_APPID, OTHER_SECRET)),
    ).toBe(0);
    await h.advance(60); // START is on a minute boundary
    expect(errcodeOf(await exchange(h, authorize(h)))).toBe(0);
  });

  it("the default is 50,000 a minute; a test can lower it per app; quota/get refuses /sns paths", async () => {
    const h = await startEmulator();
    expect(h.emulator.control.oauthSettings(APPID).minuteLimit).toBe(50000);
    h.emulator.control.setOAuthSettings(APPID, { minuteLimit: 1 });
    const { refresh: rt } = await signIn(h);
    expect(errcodeOf(await refresh(h, rt))).toBe(0);
    expect(errcodeOf(await refresh(h, rt))).toBe(45011);
    const basic = tokenOf(await h.stable());
    const quota = await h.post(
      "/cgi-bin/openapi/quota/get",
      { cgi_path: EXCHANGE },
      { access_token: basic },
    );
    expect(errcodeOf(quota)).toBe(76022);
  });
});

describe("OAuth control endpoints over HTTP", () => {
  it("authorize, read grants, expire, void, password change, settings", async () => {
    const h = await startEmulator();
    const minted = await admin(h, "POST", `/apps/${APPID}/oauth/authorize`, {
      openid: "o-carol",
      scope: "snsapi_userinfo",
      unionid: "u-carol",
    });
    expect(minted.status).toBe(201);
    expect(minted.body).toMatchObject({
      appid: APPID,
      openid: "o-carol",
      scope: "snsapi_userinfo",
    });
    expect((minted.body.expiresAt as number) - (minted.body.issuedAt as number)).toBe(300_000);
    const answer = await exchange(h, minted.body.code as string);
    expect(answer.body.unionid).toBe("u-carol");

    const grants = await admin(h, "GET", `/apps/${APPID}/oauth/grants?openid=o-carol`);
    expect(grants.body).toEqual([
      expect.objectContaining({
        accessToken: tokenOf(answer),
        refreshToken: answer.body.refresh_token,
        unionid: "u-carol",
        snapshot: false,
        accessTokenErrcode: 0,
        refreshTokenErrcode: 0,
      }),
    ]);

    const rt = answer.body.refresh_token as string;
    const expire = await admin(h, "POST", `/apps/${APPID}/oauth/expire-refresh-token`, {
      refreshToken: rt,
    });
    expect(expire.body).toEqual({ count: 1 });
    expect(errcodeOf(await refresh(h, rt))).toBe(42002);

    const d = await signIn(h, { openid: "o-dave", scope: "snsapi_base" });
    const voided = await admin(h, "POST", `/apps/${APPID}/oauth/void-refresh-token`, {
      openid: "o-dave",
    });
    expect(voided.body).toEqual({ count: 1 });
    expect(errcodeOf(await refresh(h, d.refresh))).toBe(40030);

    const e = await signIn(h, { openid: "o-erin", scope: "snsapi_base" });
    const pw = await admin(h, "POST", `/apps/${APPID}/oauth/password-change`, { openid: "o-erin" });
    expect(pw.body).toEqual({ count: 1 });
    expect(errcodeOf(await refresh(h, e.refresh))).toBe(42007);

    const set = await admin(h, "POST", `/apps/${APPID}/oauth/settings`, { minuteLimit: 7 });
    expect(set.status).toBe(200);
    const settings = await admin(h, "GET", `/apps/${APPID}/oauth/settings`);
    expect(settings.body).toEqual({
      codeTtlSeconds: 300,
      refreshTokenTtlSeconds: 30 * DAY,
      minuteLimit: 7,
    });
  });

  it("bad input answers 400, unknown apps and targets 404", async () => {
    const h = await startEmulator();
    const auth = (body: unknown, appid = APPID) =>
      admin(h, "POST", `/apps/${appid}/oauth/authorize`, body);
    expect((await auth({ openid: "o", scope: "snsapi_login" })).status).toBe(400);
    expect((await auth({ scope: "snsapi_base" })).status).toBe(400);
    expect((await auth({ openid: "o", scope: "snsapi_base" }, "wx-unknown")).status).toBe(404);
    const both = await admin(h, "POST", `/apps/${APPID}/oauth/void-refresh-token`, {
      openid: "o",
      refreshToken: "r",
    });
    expect(both.status).toBe(400);
    const none = await admin(h, "POST", `/apps/${APPID}/oauth/password-change`, { openid: "o" });
    expect(none.status).toBe(404);
    const badTtl = await admin(h, "POST", `/apps/${APPID}/oauth/settings`, { codeTtlSeconds: 0 });
    expect(badTtl.status).toBe(400);
  });

  it("reset forgets codes and grants; removing an app kills its grants", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const code = authorize(h);
    const a = await signIn(h);
    control.reset();
    expect(errcodeOf(await exchange(h, code))).toBe(40029);
    expect(errcodeOf(await refresh(h, a.refresh))).toBe(40030);
    expect(errcodeOf(await snsAuth(h, a.access))).toBe(40001);

    const b = await signIn(h);
    control.removeApp(APPID);
    expect(errcodeOf(await snsAuth(h, b.access))).toBe(40001);
  });

  it("counters count calls per endpoint and app, like the basic token APIs", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const a = await signIn(h);
    await refresh(h, a.refresh);
    await refresh(h, a.refresh);
    await snsAuth(h, a.access);
    expect(control.callCount(EXCHANGE, APPID)).toBe(1);
    expect(control.callCount(REFRESH, APPID)).toBe(2);
    expect(control.callCount(AUTH, APPID)).toBe(1);
    control.injectFault({
      endpoint: REFRESH,
      appid: APPID,
      times: 1,
      action: { type: "errcode", errcode: -1 },
    });
    expect(errcodeOf(await refresh(h, a.refresh))).toBe(-1);
    expect(control.counters()[REFRESH]?.[APPID]).toMatchObject({ calls: 3, faults: 1 });
  });
});
