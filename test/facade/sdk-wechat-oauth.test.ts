import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, type TestCa, type TestPki } from "../helpers/certs.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, SHOP, startFacadeBroker } from "./helpers.js";

/**
 * Issue 13 with a real SDK, unmodified from npm: wechat-oauth 1.5.0. Its
 * URLs are fixed to https://api.weixin.qq.com; what it offers is
 * `setOpts(options)`, "urllib's default options", and urllib's documented
 * `beforeRequest` hook may change the request's host and port: the one
 * setting that points it at the broker (which must then serve TLS, as the
 * SDK speaks https). Several instances (a double redirect, two replicas)
 * exchange one code with one WeChat call; refreshAccessToken is answered from
 * the broker's grant; WeChat rejecting the user's token costs one refresh.
 */

interface OAuthToken {
  data: {
    access_token: string;
    expires_in: number;
    refresh_token: string;
    openid: string;
    scope: string;
  };
}
type Callback<T> = (err: (Error & { code?: number }) | null, result: T) => void;
interface WechatOAuth {
  setOpts(opts: Record<string, unknown>): void;
  getAccessToken(code: string, cb: Callback<OAuthToken>): void;
  refreshAccessToken(refreshToken: string, cb: Callback<OAuthToken>): void;
  verifyToken(openid: string, accessToken: string, cb: Callback<{ errcode: number }>): void;
}
const OAuth = createRequire(import.meta.url)("wechat-oauth") as new (
  appid: string,
  secret: string,
) => WechatOAuth;

function call<T>(fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((err, result) => (err ? reject(err) : resolve(result))),
  );
}

let pki: TestPki;
let ca: TestCa;
let b: FacadeBroker;
beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa("facade-oauth-ca");
  const server = await ca.serverCert();
  b = await startFacadeBroker({
    logger: logSink().logger,
    config: { security: { tls: { certFile: server.certFile, keyFile: server.keyFile } } },
  });
});
afterAll(async () => {
  await b?.close();
  await pki?.cleanup();
});

/** An SDK instance as a service creates it, plus the one setting that sends it to the broker. */
function sdk(): WechatOAuth {
  const oauth = new OAuth(SHOP.appid, SHOP.secret);
  const { hostname, port } = new URL(b.url);
  oauth.setOpts({
    beforeRequest(options: Record<string, unknown>) {
      options.host = hostname;
      options.port = Number(port);
    },
    ca: ca.cert,
  });
  return oauth;
}

const mint = (openid: string) => {
  const { code } = b.emulator.control.authorizeUser(SHOP.appid, { openid, scope: "snsapi_base" });
  recordLeakCandidate("oauth_code", code);
  return code;
};

describe("wechat-oauth pointed at the façade", () => {
  it("exchanges a code presented to three instances with one WeChat call, and refreshes from the broker's grant", async () => {
    expect(b.url.startsWith("https://")).toBe(true);
    const fleet = [sdk(), sdk(), sdk()];
    const code = mint("o-sdk-oauth-1");
    const grants = await Promise.all(
      fleet.map((oauth) => call<OAuthToken>((cb) => oauth.getAccessToken(code, cb))),
    );
    expect(b.calls("/sns/oauth2/access_token", SHOP.appid)).toBe(1);
    const wechat = b.emulator.control.oauthGrants(SHOP.appid, "o-sdk-oauth-1")[0];
    for (const g of grants) {
      expect(g.data).toMatchObject({ access_token: wechat?.accessToken, openid: "o-sdk-oauth-1" });
      expect(g.data.refresh_token).not.toBe(wechat?.refreshToken);
    }
    const handle = String(grants[0]?.data.refresh_token);
    recordLeakCandidate("refresh_token", handle);
    const refreshed = await Promise.all(
      fleet.map((oauth) => call<OAuthToken>((cb) => oauth.refreshAccessToken(handle, cb))),
    );
    for (const r of refreshed) expect(r.data.access_token).toBe(wechat?.accessToken);
    expect(b.calls("/sns/oauth2/refresh_token", SHOP.appid)).toBe(0);
  });

  it("reports WeChat's 40001 on the user's token once for the fleet, and every instance refreshes to the broker's token", async () => {
    const fleet = [sdk(), sdk(), sdk()];
    const code = mint("o-sdk-oauth-2");
    const grant = await call<OAuthToken>((cb) =>
      (fleet[0] as WechatOAuth).getAccessToken(code, cb),
    );
    recordLeakCandidate("refresh_token", grant.data.refresh_token);
    b.emulator.control.injectFault({
      endpoint: "/sns/auth",
      action: { type: "errcode", errcode: 40001 },
      times: fleet.length,
    });
    const refusals = await Promise.allSettled(
      fleet.map((oauth) =>
        call((cb) => oauth.verifyToken("o-sdk-oauth-2", grant.data.access_token, cb)),
      ),
    );
    for (const r of refusals) {
      expect(r.status).toBe("rejected");
      if (r.status === "rejected") expect((r.reason as { code?: number }).code).toBe(40001);
    }
    expect(b.calls("/sns/oauth2/refresh_token", SHOP.appid)).toBe(1);
    // What an app does on 40001 with this SDK: refreshAccessToken, then carry on.
    for (const oauth of fleet) {
      const r = await call<OAuthToken>((cb) =>
        oauth.refreshAccessToken(grant.data.refresh_token, cb),
      );
      const ok = await call<{ errcode: number }>((cb) =>
        oauth.verifyToken("o-sdk-oauth-2", r.data.access_token, cb),
      );
      expect(ok.errcode).toBe(0);
    }
    expect(b.calls("/sns/oauth2/refresh_token", SHOP.appid)).toBe(1);
  });
});
