import { Code, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { failure } from "../helpers/connect-failure.js";

/**
 * Users' grants as an attacker with a key would try them, over every
 * transport: a client may exchange codes only with the `oauth` permission,
 * may touch users' credentials only of the apps in its `userTokenApps`
 * (`apps` alone does not do), and never gets another client's exchange.
 */

const WEB = { id: "web", appid: "wx000000000000os01", secret: "web-secret-oauth-sec-01" };
const SHOP = { id: "shop", appid: "wx000000000000os02", secret: "shop-secret-oauth-sec-1" };
const KEYS = {
  login: "login-key-9a8b7c6d5e4f",
  other: "other-login-key-0f1e2d3c",
  apps: "app-tokens-key-11223344",
  noOauth: "no-oauth-key-55667788",
};

let h: BrokerHarness;
beforeAll(async () => {
  h = await startBrokerHarness([WEB, SHOP], 1000, {
    config: {
      security: {
        clients: [
          {
            id: "login-page",
            apiKeySha256: hashApiKey(KEYS.login),
            apps: ["web"],
            userTokenApps: ["web"],
            permissions: ["get", "watch", "oauth"],
          },
          {
            id: "other-login",
            apiKeySha256: hashApiKey(KEYS.other),
            apps: ["*"],
            userTokenApps: ["*"],
            permissions: ["get", "oauth"],
          },
          {
            // Every app's app-level tokens, no users'.
            id: "app-tokens",
            apiKeySha256: hashApiKey(KEYS.apps),
            apps: ["*"],
            permissions: ["get", "watch", "invalidate", "oauth"],
          },
          {
            id: "no-oauth",
            apiKeySha256: hashApiKey(KEYS.noOauth),
            apps: ["web"],
            userTokenApps: ["web"],
            permissions: ["get"],
          },
        ],
      },
    },
  });
});
afterAll(async () => {
  await h.close();
});

const transports: Array<[string, () => Transport]> = [
  ["gRPC on the grpc-js port", () => createGrpcTransport({ baseUrl: `http://${h.grpcAddress}` })],
  ["gRPC on the Connect port", () => createGrpcTransport({ baseUrl: h.broker.connect.url })],
  [
    "gRPC-Web on the Connect port",
    () => createGrpcWebTransport({ baseUrl: h.broker.connect.url, httpVersion: "1.1" }),
  ],
  [
    "Connect JSON on the Connect port",
    () => createConnectTransport({ baseUrl: h.broker.connect.url, httpVersion: "1.1" }),
  ],
];

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const mint = (openid: string, appid = WEB.appid) =>
  h.emulator.control.authorizeUser(appid, { openid, scope: "snsapi_base" }).code;

describe.each(transports)("users' grants over %s", (name, transport) => {
  const tag = name.replace(/\W+/g, "-").toLowerCase();

  it("lets the login page exchange a code and read its user's token, and REAUTHORIZE reaches the client as ErrorInfo", async () => {
    const oauth = createClient(OAuthService, transport());
    const tokens = createClient(TokenService, transport());
    const openid = `o-${tag}-ok`;
    const grant = await oauth.exchangeCode({ appId: "web", code: mint(openid) }, auth(KEYS.login));
    expect(grant.openid).toBe(openid);
    const got = await tokens.getToken(
      { appId: "web", kind: TokenKind.USER_ACCESS_TOKEN, subject: openid },
      auth(KEYS.login),
    );
    expect(got.token?.value).toBe(grant.token?.value);
    const void_ = await failure(
      tokens.getToken(
        { appId: "web", kind: TokenKind.USER_ACCESS_TOKEN, subject: `o-${tag}-nobody` },
        auth(KEYS.login),
      ),
    );
    expect(void_.code).toBe(Code.FailedPrecondition);
    expect(void_.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "REAUTHORIZE",
      domain: "tokenbroker.v1",
    });
  });

  it("refuses ExchangeCode without the oauth permission, before WeChat is called", async () => {
    const oauth = createClient(OAuthService, transport());
    const before = h.emulator.control.callCount("/sns/oauth2/access_token", WEB.appid);
    const err = await failure(
      oauth.exchangeCode({ appId: "web", code: mint(`o-${tag}-np`) }, auth(KEYS.noOauth)),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toContain("'oauth' permission");
    expect(h.emulator.control.callCount("/sns/oauth2/access_token", WEB.appid)).toBe(before);
  });

  it("keeps users' tokens from a client whose apps include the app but whose userTokenApps do not", async () => {
    const oauth = createClient(OAuthService, transport());
    const tokens = createClient(TokenService, transport());
    const openid = `o-${tag}-acl`;
    await oauth.exchangeCode({ appId: "web", code: mint(openid) }, auth(KEYS.login));
    const req = { appId: "web", kind: TokenKind.USER_ACCESS_TOKEN, subject: openid };
    for (const call of [
      () => tokens.getToken(req, auth(KEYS.apps)),
      () =>
        tokens.invalidateToken(
          { ...req, rejectedValue: "x".repeat(40), errcode: 40001 },
          auth(KEYS.apps),
        ),
      () => oauth.exchangeCode({ appId: "web", code: mint(`${openid}-2`) }, auth(KEYS.apps)),
      () => oauth.forgetUser({ appId: "web", openid }, auth(KEYS.apps)),
    ]) {
      const err = await failure(call());
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toContain("userTokenApps");
    }
    // Its app-level token is still its to read.
    const app = await tokens.getToken(
      { appId: "web", kind: TokenKind.ACCESS_TOKEN },
      auth(KEYS.apps),
    );
    expect(app.token?.value).not.toBe("");
    // The login page is limited to its app, even for users' tokens.
    const other = await failure(
      oauth.exchangeCode(
        { appId: "shop", code: mint(`${openid}-3`, SHOP.appid) },
        auth(KEYS.login),
      ),
    );
    expect(other.code).toBe(Code.PermissionDenied);
  });

  it("never hands one client's exchange to another client presenting the same code", async () => {
    const oauth = createClient(OAuthService, transport());
    const code = mint(`o-${tag}-steal`);
    await oauth.exchangeCode({ appId: "web", code }, auth(KEYS.login));
    const stolen = await failure(oauth.exchangeCode({ appId: "web", code }, auth(KEYS.other)));
    expect(stolen.code).toBe(Code.PermissionDenied);
    expect(stolen.rawMessage).toContain("another client");
    expect(stolen.rawMessage).not.toContain(code);
  });
});
