// Adopting the broker with co-wechat-api: the one setting is `api.prefix`.
// Every /cgi-bin/ call the SDK makes is built from it, so its token and
// ticket fetches reach the broker's WeChat-compatible façade, and its other
// API calls are forwarded to WeChat with the broker's token.
//
//   BROKER_URL=http://127.0.0.1:8080 WECHAT_APPID=wx... WECHAT_SECRET=... \
//     node examples/facade-co-wechat-api.mjs
//
// WECHAT_SECRET is the app's AppSecret, or the API key of a client of the
// broker in its place. Prints fingerprints (as the broker's logs name
// tokens), never a token or ticket.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";

const API = createRequire(import.meta.url)("co-wechat-api");
const { BROKER_URL, WECHAT_APPID, WECHAT_SECRET } = process.env;
if (!BROKER_URL || !WECHAT_APPID || !WECHAT_SECRET) {
  console.error("set BROKER_URL, WECHAT_APPID and WECHAT_SECRET");
  process.exit(2);
}

const api = new API(WECHAT_APPID, WECHAT_SECRET);
api.prefix = `${BROKER_URL.replace(/\/+$/, "")}/cgi-bin/`; // the one setting

const fingerprint = (value) => createHash("sha256").update(value).digest("hex").slice(0, 12);
const token = await api.getAccessToken();
const config = await api.getJsConfig({
  url: "https://example.com/page",
  jsApiList: ["updateAppMessageShareData"],
});
const ticket = await api.getLatestTicket();
const { ip_list } = await api.getIp(); // an ordinary API call, forwarded to WeChat
console.log(
  JSON.stringify({
    token: fingerprint(token.accessToken),
    // co-wechat-api keeps the token 10 s less than it is told.
    tokenSecondsLeft: Math.round((token.expireTime - Date.now()) / 1000) + 10,
    ticket: fingerprint(ticket.ticket),
    jsConfigSigned: /^[0-9a-f]{40}$/.test(config.signature),
    callbackIps: ip_list.length,
  }),
);
