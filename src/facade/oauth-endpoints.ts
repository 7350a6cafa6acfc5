import { type Endpoint, expiresIn, presented, through, wechatApp } from "./endpoint-kit.js";
import { param } from "./http-io.js";
import { refused } from "./identities.js";
import type { Verdict } from "./invoke.js";
import { issueHandle, readHandle } from "./refresh-handle.js";
import { fail, ok } from "./wechat-reply.js";

const USER_TOKEN_KIND = "user_access_token";

/**
 * `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`:
 * the user's grant through the broker's duplicate-safe exchange
 * (OAuthService.ExchangeCode): one WeChat call per code however often and
 * wherever it arrives, repeats answered from that call. The answer is
 * WeChat's, except `refresh_token`: a handle for the grant the broker keeps
 * (refresh-handle.ts), since WeChat's refresh token never leaves the broker.
 */
export const exchange: Endpoint = async (req, t) => {
  if (req.httpMethod !== "GET") return fail(43001);
  const q = req.query;
  if (param(q, "grant_type") !== "authorization_code") return fail(40002);
  const appid = param(q, "appid");
  if (appid === undefined) return fail(41002);
  const code = param(q, "code");
  if (code === undefined) return fail(41008);
  const app = wechatApp(t.apps, appid);
  const verdict: Verdict = app
    ? t.ids.bySecret(app, "wechat", presented(req, param(q, "secret")))
    : refused(40013, "no app with this appid is served by this broker");
  return through(
    req,
    verdict,
    "wechat",
    (c) => t.calls.exchangeCode(app?.id ?? "", code, c),
    (res) => {
      const tk = res.token;
      if (!app || !tk || !("client" in verdict))
        return fail(-1, "the broker answered without a token");
      const handle = issueHandle(app, {
        openid: res.openid,
        scope: res.scope,
        client: verdict.client.id,
      });
      return ok(
        {
          access_token: tk.value,
          expires_in: expiresIn(tk),
          refresh_token: handle,
          openid: res.openid,
          scope: res.scope,
          ...(res.unionid === "" ? {} : { unionid: res.unionid }),
          ...(res.snapshotUser ? { is_snapshotuser: 1 } : {}),
        },
        false,
      );
    },
  );
};

/**
 * `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token`:
 * answered from the grant the broker holds (GetToken of the user's token),
 * so nothing is refreshed at WeChat while the user's token is still good —
 * WeChat itself keeps the token on a refresh then. The handle names the
 * client that exchanged the code, which the call runs as (an
 * `authorization: Bearer` API key names another); an unknown or forged
 * handle is 40030, a grant the broker no longer holds 40030 or WeChat's
 * errcode (42002, 42007), as when the user must authorize again.
 */
export const refresh: Endpoint = async (req, t) => {
  if (req.httpMethod !== "GET") return fail(43001);
  const q = req.query;
  if (param(q, "grant_type") !== "refresh_token") return fail(40002);
  const appid = param(q, "appid");
  if (appid === undefined) return fail(41002);
  const handle = param(q, "refresh_token");
  if (handle === undefined) return fail(41003);
  const app = wechatApp(t.apps, appid);
  const claims = app ? readHandle(app, handle) : undefined;
  let verdict: Verdict;
  if (!app) verdict = refused(40013, "no app with this appid is served by this broker");
  else if (!claims) verdict = refused(40030, "not a refresh_token this broker issued for the app");
  else {
    const client = t.ids.byId(claims.client, app);
    verdict =
      t.ids.byBearer(req.header.get("authorization"), "wechat") ??
      (client
        ? { client }
        : refused(40030, "the client that exchanged the code is no longer configured"));
  }
  const key = { appId: app?.id ?? "", kind: USER_TOKEN_KIND, subject: claims?.openid ?? "_" };
  return through(
    req,
    verdict,
    "wechat",
    (c) => t.calls.getToken(key, c),
    (tk) =>
      ok(
        {
          access_token: tk.value,
          expires_in: expiresIn(tk),
          refresh_token: handle,
          openid: claims?.openid,
          scope: claims?.scope,
        },
        false,
      ),
  );
};
