import { createRequire } from "node:module";
import { afterEach, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, KEYS, SHOP, startFacadeBroker, tokenQuery } from "./helpers.js";

/**
 * Issue 13 with a real SDK, unmodified from npm: co-wechat-api 3.11.0,
 * pointed at the broker by its one API-host setting, `api.prefix` (every
 * /cgi-bin/ call it makes is built from it). A fleet of instances gets the
 * broker's token and JS-SDK ticket, WeChat (the emulator) sees only the
 * broker's calls, and a 40001 the SDK meets costs one refresh for the fleet:
 * its own "40001 → saveToken(null), fetch again, retry" path does the rest.
 */

interface CoWechatApi {
  prefix: string;
  getAccessToken(): Promise<{ accessToken: string; expireTime: number }>;
  getLatestTicket(): Promise<{ ticket: string; expireTime: number }>;
  getIp(): Promise<{ ip_list: string[] }>;
}
type CoWechatApiClass = new (appid: string, secret: string) => CoWechatApi;
const API = createRequire(import.meta.url)("co-wechat-api") as CoWechatApiClass;

let b: FacadeBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

/** An SDK instance as a service would create it, with the one setting changed. */
function sdk(h: FacadeBroker, secret: string): CoWechatApi {
  const api = new API(SHOP.appid, secret);
  api.prefix = `${h.url}/cgi-bin/`;
  return api;
}

describe("co-wechat-api pointed at the façade", () => {
  it("gets the broker's token and ticket on every instance, and WeChat sees only the broker", async () => {
    b = await startFacadeBroker({ logger: logSink().logger });
    const h = b;
    // Five instances: four with the AppSecret, one with an API key in its place.
    const fleet = [...Array.from({ length: 4 }, () => sdk(h, SHOP.secret)), sdk(h, KEYS.orders)];
    const tokens = await Promise.all(fleet.map((api) => api.getAccessToken()));
    const tickets = await Promise.all(fleet.map((api) => api.getLatestTicket()));
    const rpcToken = await h.tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    const rpcTicket = await h.tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    for (const t of tokens) {
      expect(t.accessToken).toBe(rpcToken.token?.value);
      // The SDK's cache ends with the broker's token (it subtracts 10 s of its own).
      const left = (t.expireTime - Date.now()) / 1000 + 10;
      expect(Math.abs(left - Number(rpcToken.token?.expiresIn))).toBeLessThanOrEqual(2);
    }
    for (const t of tickets) expect(t.ticket).toBe(rpcTicket.token?.value);
    // Business calls go through the façade to WeChat with the shared token.
    for (const api of fleet) expect((await api.getIp()).ip_list.length).toBeGreaterThan(0);
    expect(h.calls("/cgi-bin/token", SHOP.appid)).toBe(1);
    expect(h.calls("/cgi-bin/ticket/getticket", SHOP.appid)).toBe(1);
    expect(h.calls("/cgi-bin/getcallbackip", SHOP.appid)).toBe(fleet.length);
  });

  it("makes a 40001 seen by every instance cost one refresh for the whole fleet", async () => {
    b = await startFacadeBroker({ logger: logSink().logger });
    const h = b;
    const fleet = Array.from({ length: 5 }, () => sdk(h, SHOP.secret));
    const first = await Promise.all(fleet.map((api) => api.getAccessToken()));
    const dead = first[0]?.accessToken;
    // Another party fetches the app's token from WeChat twice: the fleet's token is dead (40001).
    for (let i = 0; i < 2; i++) {
      await fetch(
        `${h.emulatorUrl}/cgi-bin/token?${new URLSearchParams(tokenQuery(SHOP, SHOP.secret))}`,
      );
    }
    expect(h.emulator.control.checkToken(String(dead)).errcode).toBe(40001);
    // Every instance's next call meets 40001; the SDK fetches again and retries, and succeeds.
    const results = await Promise.all(fleet.map((api) => api.getIp()));
    for (const r of results) expect(r.ip_list.length).toBeGreaterThan(0);
    // Each instance's call was refused once (40001) and retried with the new token.
    expect(h.calls("/cgi-bin/getcallbackip", SHOP.appid)).toBe(2 * fleet.length);
    const after = await Promise.all(fleet.map((api) => api.getAccessToken()));
    const rpc = await h.tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    for (const t of after) expect(t.accessToken).toBe(rpc.token?.value);
    expect(rpc.token?.value).not.toBe(dead);
    // WeChat's /cgi-bin/token: the broker's first fetch, the other party's two, one refresh.
    expect(h.calls("/cgi-bin/token", SHOP.appid)).toBe(4);
  });
});
