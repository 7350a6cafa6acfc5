import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, MINI, SHOP, startFacadeBroker, tokenQuery } from "./helpers.js";

/**
 * Issue 13 with a real SDK, unmodified from npm: node-easywechat 3.6.2 (the
 * Node port of EasyWeChat 6), pointed at the broker by its API-host setting,
 * `http.baseURL`: official accounts (classic), mini programs on
 * `use_stable_access_token` and WeCom apps get the broker's tokens and
 * tickets, each instance with a cache of its own, and WeChat sees only the
 * broker's calls. The SDK has no 40001 handling of its own; after a
 * rejection an app calls `getAccessToken().refresh()`, and the fleet's
 * rejections cost one refresh.
 */

interface Client {
  get(
    url: string,
    payload?: Record<string, unknown>,
  ): Promise<{ toObject(): Record<string, unknown> }>;
}
interface App {
  getAccessToken(): { getToken(): Promise<string>; refresh(): Promise<string> };
  getTicket(): { getTicket(): Promise<string>; getAgentTicket?(agentId: number): Promise<string> };
  getClient(): Client;
}
type AppClass = new (config: Record<string, unknown>) => App;
const sdk = createRequire(import.meta.url)("node-easywechat") as {
  OfficialAccount: AppClass;
  MiniApp: AppClass;
  Work: AppClass;
};

const CORP = "ww00000000facade02";
const HR = { agentid: 1000002, secret: "hrAgentSecretEasyWeChat_abcdefghijklmnopqrs" };

const caches = mkdtempSync(join(tmpdir(), "facade-easywechat-"));
let b: FacadeBroker;
beforeAll(async () => {
  b = await startFacadeBroker({
    logger: logSink().logger,
    wecomApps: [{ id: "hr", corpid: CORP, agentid: String(HR.agentid), secret: HR.secret }],
    emulator: { wecom: { corps: [{ corpid: CORP, apps: [HR] }] } },
  });
});
afterAll(async () => {
  await b?.close();
  rmSync(caches, { recursive: true, force: true });
});

let instances = 0;
/** What a service configures, with the one setting changed; a file cache of its own per instance. */
function config(more: Record<string, unknown>): Record<string, unknown> {
  return {
    ...more,
    http: { baseURL: `${b.url}/` },
    file_cache: { path: join(caches, String(++instances)) },
  };
}

describe("node-easywechat pointed at the façade", () => {
  it("gets an official account's token and ticket on three instances from one WeChat fetch each", async () => {
    const fleet = Array.from(
      { length: 3 },
      () => new sdk.OfficialAccount(config({ app_id: SHOP.appid, secret: SHOP.secret })),
    );
    const tokens = await Promise.all(fleet.map((app) => app.getAccessToken().getToken()));
    const tickets = await Promise.all(fleet.map((app) => app.getTicket().getTicket()));
    const rpcToken = await b.tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    const rpcTicket = await b.tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    for (const t of tokens) expect(t).toBe(rpcToken.token?.value);
    for (const t of tickets) expect(t).toBe(rpcTicket.token?.value);
    for (const app of fleet) {
      const ips = (await app.getClient().get("cgi-bin/getcallbackip")).toObject();
      expect(Array.isArray(ips.ip_list)).toBe(true);
    }
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(1);
    expect(b.calls("/cgi-bin/ticket/getticket", SHOP.appid)).toBe(1);
  });

  it("gets a mini program's token through stable_token, and a WeCom app's token and tickets", async () => {
    const mini = new sdk.MiniApp(
      config({ app_id: MINI.appid, secret: MINI.secret, use_stable_access_token: true }),
    );
    const rpcMini = await b.tokens.getToken({ appId: "mini", kind: TokenKind.ACCESS_TOKEN });
    expect(await mini.getAccessToken().getToken()).toBe(rpcMini.token?.value);
    const work = new sdk.Work(config({ corp_id: CORP, secret: HR.secret }));
    const rpcHr = await b.tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN });
    expect(await work.getAccessToken().getToken()).toBe(rpcHr.token?.value);
    const rpcCorp = await b.tokens.getToken({ appId: "hr", kind: TokenKind.JSAPI_TICKET });
    expect(await work.getTicket().getTicket()).toBe(rpcCorp.token?.value);
    const rpcAgent = await b.tokens.getToken({ appId: "hr", kind: TokenKind.WECOM_AGENT_TICKET });
    expect(await work.getTicket().getAgentTicket?.(HR.agentid)).toBe(rpcAgent.token?.value);
    expect(b.calls("/cgi-bin/gettoken", `${CORP}/${HR.agentid}`)).toBe(1);
  });

  it("makes a 40001 met by three instances cost one refresh, and refresh() gets the new token", async () => {
    const fleet = Array.from(
      { length: 3 },
      () => new sdk.OfficialAccount(config({ app_id: SHOP.appid, secret: SHOP.secret })),
    );
    const held = await Promise.all(fleet.map((app) => app.getAccessToken().getToken()));
    const before = b.calls("/cgi-bin/token", SHOP.appid);
    // Another party fetches the app's token twice: the fleet's token is dead.
    for (let i = 0; i < 2; i++) {
      await fetch(
        `${b.emulatorUrl}/cgi-bin/token?${new URLSearchParams(tokenQuery(SHOP, SHOP.secret))}`,
      );
    }
    const refused = await Promise.all(
      fleet.map(async (app) => (await app.getClient().get("cgi-bin/getcallbackip")).toObject()),
    );
    for (const r of refused) expect(r.errcode).toBe(40001);
    const fresh = await Promise.all(fleet.map((app) => app.getAccessToken().refresh()));
    for (const t of fresh) {
      expect(t).not.toBe(held[0]);
      expect(t).toBe(fresh[0]);
    }
    for (const app of fleet) {
      const ips = (await app.getClient().get("cgi-bin/getcallbackip")).toObject();
      expect(Array.isArray(ips.ip_list)).toBe(true);
    }
    // The other party's two fetches and one refresh by the broker.
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(before + 3);
  });
});
