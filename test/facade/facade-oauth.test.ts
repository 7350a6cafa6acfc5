import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, KEYS, MINI, SHOP, startFacadeBroker } from "./helpers.js";

/**
 * Issue 13, the façade's web OAuth endpoints: /sns/oauth2/access_token goes
 * through the broker's duplicate-safe exchange (one WeChat call per code),
 * /sns/oauth2/refresh_token is answered from the grant the broker holds
 * (nothing refreshed at WeChat while the user's token is good). The
 * refresh_token an SDK gets is the broker's handle, never WeChat's.
 */

const EXCHANGE = "/sns/oauth2/access_token";
const REFRESH = "/sns/oauth2/refresh_token";

let b: FacadeBroker;
beforeAll(async () => {
  b = await startFacadeBroker({ logger: logSink().logger });
});
afterAll(async () => {
  await b?.close();
});

const mint = (openid: string) =>
  b.emulator.control.authorizeUser(SHOP.appid, {
    openid,
    scope: "snsapi_userinfo",
    unionid: `u-${openid}`,
  }).code;
const exchange = (code: string, secret: string = SHOP.secret) =>
  b.get(EXCHANGE, { appid: SHOP.appid, secret, code, grant_type: "authorization_code" });
const refresh = (handle: string, appid: string = SHOP.appid) =>
  b.get(REFRESH, { appid, grant_type: "refresh_token", refresh_token: handle });

describe("/sns/oauth2/access_token", () => {
  it("exchanges a code once however often it arrives, in WeChat's shape, with the broker's handle as refresh_token", async () => {
    const code = mint("o-facade-1");
    recordLeakCandidate("oauth_code", code);
    const answers = await Promise.all(Array.from({ length: 10 }, () => exchange(code)));
    expect(b.calls(EXCHANGE, SHOP.appid)).toBe(1);
    const first = answers[0] ?? {};
    expect(Object.keys(first).sort()).toEqual(
      ["access_token", "expires_in", "openid", "refresh_token", "scope", "unionid"].sort(),
    );
    expect(first).toMatchObject({
      openid: "o-facade-1",
      scope: "snsapi_userinfo",
      unionid: "u-o-facade-1",
    });
    for (const a of answers) expect(a).toEqual(first);
    const grant = b.emulator.control.oauthGrants(SHOP.appid, "o-facade-1")[0];
    expect(first.access_token).toBe(grant?.accessToken);
    // WeChat's refresh token stays in the broker.
    expect(first.refresh_token).not.toBe(grant?.refreshToken);
    recordLeakCandidate("refresh_token", String(first.refresh_token));
  });

  it("answers 40029 for a code WeChat does not know, 41008 without one, 40125 for a wrong secret", async () => {
    expect((await exchange("not-a-code-facade-0001")).errcode).toBe(40029);
    expect(
      (
        await b.get(EXCHANGE, {
          appid: SHOP.appid,
          secret: SHOP.secret,
          grant_type: "authorization_code",
        })
      ).errcode,
    ).toBe(41008);
    const calls = b.calls(EXCHANGE, SHOP.appid);
    expect((await exchange(mint("o-facade-2"), "wrong-secret-0000000000000")).errcode).toBe(40125);
    expect(b.calls(EXCHANGE, SHOP.appid)).toBe(calls);
  });

  it("gives a code exchanged by one client to no other client (48001)", async () => {
    const code = mint("o-facade-3");
    expect((await exchange(code)).errcode).toBeUndefined();
    expect((await exchange(code, KEYS.ops)).errcode).toBe(48001);
  });
});

describe("/sns/oauth2/refresh_token", () => {
  it("answers from the grant the broker holds, with no call to WeChat while the token is good", async () => {
    const first = await exchange(mint("o-facade-4"));
    const handle = String(first.refresh_token);
    const again = await Promise.all(Array.from({ length: 5 }, () => refresh(handle)));
    for (const a of again) {
      expect(a).toMatchObject({
        access_token: first.access_token,
        refresh_token: handle,
        openid: "o-facade-4",
        scope: "snsapi_userinfo",
      });
      expect(Number(a.expires_in)).toBeGreaterThan(7000);
    }
    expect(b.calls(REFRESH, SHOP.appid)).toBe(0);
  });

  it("refuses a forged handle, another app's, one for a forgotten grant, and none at all", async () => {
    const first = await exchange(mint("o-facade-5"));
    const handle = String(first.refresh_token);
    const forged = `${handle.slice(0, -4)}${handle.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    expect((await refresh(forged)).errcode).toBe(40030);
    expect((await refresh(handle, MINI.appid)).errcode).toBe(40030);
    expect((await b.get(REFRESH, { appid: SHOP.appid, grant_type: "refresh_token" })).errcode).toBe(
      41003,
    );
    const oauth = createClient(
      OAuthService,
      createConnectTransport({
        baseUrl: b.broker.connect.url,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${KEYS.ops}`);
            return next(req);
          },
        ],
      }),
    );
    await oauth.forgetUser({ appId: "shop", openid: "o-facade-5" });
    expect((await refresh(handle)).errcode).toBe(40030);
    expect(b.calls(REFRESH, SHOP.appid)).toBe(0);
  });

  it("refreshes once at WeChat when WeChat rejects the user's token for 3 SDK calls", async () => {
    const first = await exchange(mint("o-facade-6"));
    const token = String(first.access_token);
    b.emulator.control.injectFault({
      endpoint: "/sns/auth",
      action: { type: "errcode", errcode: 40001 },
      times: 3,
    });
    const refused = await Promise.all(
      Array.from({ length: 3 }, () =>
        b.get("/sns/auth", { access_token: token, openid: "o-facade-6" }),
      ),
    );
    for (const r of refused) expect(r.errcode).toBe(40001);
    expect(b.calls(REFRESH, SHOP.appid)).toBe(1);
    const after = await refresh(String(first.refresh_token));
    const rpc = await b.tokens.getToken({
      appId: "shop",
      kind: TokenKind.USER_ACCESS_TOKEN,
      subject: "o-facade-6",
    });
    expect(after.access_token).toBe(rpc.token?.value);
    expect(
      (await b.get("/sns/auth", { access_token: String(after.access_token), openid: "o-facade-6" }))
        .errcode,
    ).toBe(0);
  });
});
