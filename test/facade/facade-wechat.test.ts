import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, KEYS, MINI, SHOP, startFacadeBroker, tokenQuery } from "./helpers.js";

/**
 * Issue 13, the WeChat-compatible façade, official accounts and mini
 * programs over raw HTTP: WeChat's paths, parameters and JSON shapes,
 * answered with the broker's credentials (the same as GetToken gives), with
 * `expires_in` what is really left, and WeChat (the emulator) seeing only
 * the broker's own fetches.
 */

const audit = logSink();
let b: FacadeBroker;
beforeAll(async () => {
  b = await startFacadeBroker({ logger: logSink().logger, audit: audit.logger });
});
afterAll(async () => {
  await b?.close();
});

describe("GET /cgi-bin/token", () => {
  it("answers 50 concurrent SDK fetches with the broker's token from one WeChat call", async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))),
    );
    const rpc = await b.tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    for (const a of answers) {
      // WeChat's success shape: no errcode (R2).
      expect(Object.keys(a).sort()).toEqual(["access_token", "expires_in"]);
      expect(a.access_token).toBe(rpc.token?.value);
      // What is really left (the classic token's reported end), not a nominal 7200.
      expect(Math.abs(Number(a.expires_in) - Number(rpc.token?.expiresIn))).toBeLessThanOrEqual(1);
      expect(Number(a.expires_in)).toBeLessThan(7200);
    }
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(1);
  });

  it("takes a client's API key in place of the AppSecret, as the secret or as a Bearer header", async () => {
    const bySecret = await b.get("/cgi-bin/token", tokenQuery(SHOP, KEYS.orders));
    const byHeader = await b.get(
      "/cgi-bin/token",
      { grant_type: "client_credential", appid: SHOP.appid },
      { authorization: `Bearer ${KEYS.orders}` },
    );
    const viaSecret = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    expect(bySecret.access_token).toBe(viaSecret.access_token);
    expect(byHeader.access_token).toBe(viaSecret.access_token);
  });

  it("answers WeChat's errcodes for a wrong request, without calling WeChat", async () => {
    const before = b.calls("/cgi-bin/token");
    expect(
      (await b.get("/cgi-bin/token", tokenQuery(SHOP, "wrong-secret-0000000000"))).errcode,
    ).toBe(40125);
    // Another app's AppSecret is a wrong secret for this app.
    expect((await b.get("/cgi-bin/token", tokenQuery(SHOP, MINI.secret))).errcode).toBe(40125);
    expect(
      (await b.get("/cgi-bin/token", tokenQuery({ appid: "wx00000000unknown9" }, SHOP.secret)))
        .errcode,
    ).toBe(40013);
    expect(
      (await b.get("/cgi-bin/token", { grant_type: "client_credential", appid: SHOP.appid }))
        .errcode,
    ).toBe(41004);
    expect((await b.get("/cgi-bin/token", { grant_type: "client_credential" })).errcode).toBe(
      41002,
    );
    expect(
      (await b.get("/cgi-bin/token", { ...tokenQuery(SHOP, SHOP.secret), grant_type: "password" }))
        .errcode,
    ).toBe(40002);
    expect(b.calls("/cgi-bin/token")).toBe(before);
  });

  it("turns rejected=<token> into one compare-and-refresh for any number of reports", async () => {
    const first = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    const before = b.calls("/cgi-bin/token", SHOP.appid);
    const reports = await Promise.all(
      Array.from({ length: 10 }, () =>
        b.get("/cgi-bin/token", {
          ...tokenQuery(SHOP, SHOP.secret),
          rejected: String(first.access_token),
        }),
      ),
    );
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(before + 1);
    const fresh = reports[0]?.access_token;
    expect(fresh).not.toBe(first.access_token);
    for (const r of reports) expect(r.access_token).toBe(fresh);
    // A report of a value already replaced refreshes nothing.
    const late = await b.get("/cgi-bin/token", {
      ...tokenQuery(SHOP, SHOP.secret),
      rejected: String(first.access_token),
    });
    expect(late.access_token).toBe(fresh);
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(before + 1);
    expect(
      audit.lines().some((l) => l.event === "invalidate" && l.client === "AppSecret of shop"),
    ).toBe(true);
  });
});

describe("POST /cgi-bin/stable_token", () => {
  const body = (force: boolean, secret: string = MINI.secret) => ({
    grant_type: "client_credential",
    appid: MINI.appid,
    secret,
    force_refresh: force,
  });

  it("answers the broker's token, and refuses GET and bodies that are not JSON as WeChat does", async () => {
    const a = await b.post("/cgi-bin/stable_token", body(false));
    const rpc = await b.tokens.getToken({ appId: "mini", kind: TokenKind.ACCESS_TOKEN });
    expect(a.access_token).toBe(rpc.token?.value);
    expect(Math.abs(Number(a.expires_in) - Number(rpc.token?.expiresIn))).toBeLessThanOrEqual(1);
    expect((await b.get("/cgi-bin/stable_token", tokenQuery(MINI, MINI.secret))).errcode).toBe(
      43002,
    );
    expect((await b.post("/cgi-bin/stable_token", "appid=x")).errcode).toBe(47001);
    // The official account's token through stable_token is its (classic) broker token.
    const shop = await b.post("/cgi-bin/stable_token", {
      ...body(false, SHOP.secret),
      appid: SHOP.appid,
    });
    expect(shop.access_token).toBe(
      (await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))).access_token,
    );
  });

  it("force_refresh=true never rotates for a caller without the admin permission", async () => {
    const current = await b.post("/cgi-bin/stable_token", body(false));
    const before = b.calls("/cgi-bin/stable_token", MINI.appid);
    for (const secret of [MINI.secret, KEYS.orders]) {
      const forced = await b.post("/cgi-bin/stable_token", body(true, secret));
      if (secret === KEYS.orders)
        expect(forced.errcode).toBe(48001); // orders may not use mini at all
      else expect(forced.access_token).toBe(current.access_token);
    }
    expect(b.calls("/cgi-bin/stable_token", MINI.appid)).toBe(before);
    // The attempt is on the audit stream.
    expect(
      audit.lines().some((l) => l.event === "permission_denied" && l.method === "ForceRefresh"),
    ).toBe(true);
  });

  it("force_refresh=true from an admin client is the audited ForceRefresh: WeChat issues a new token", async () => {
    const current = await b.post("/cgi-bin/stable_token", body(false));
    const forced = await b.post("/cgi-bin/stable_token", body(true, KEYS.ops));
    expect(forced.access_token).toBeTypeOf("string");
    expect(forced.access_token).not.toBe(current.access_token);
    const rpc = await b.tokens.getToken({ appId: "mini", kind: TokenKind.ACCESS_TOKEN });
    expect(rpc.token?.value).toBe(forced.access_token);
    expect(
      audit
        .lines()
        .some((l) => l.event === "force_refresh" && l.client === "ops" && l.outcome === "ok"),
    ).toBe(true);
  });
});

describe("GET /cgi-bin/ticket/getticket", () => {
  it("answers the broker's tickets to the holder of the app's access token", async () => {
    const { access_token } = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    const token = String(access_token);
    const jsapi = await b.get("/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" });
    const card = await b.get("/cgi-bin/ticket/getticket", { access_token: token, type: "wx_card" });
    const rpc = await b.tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    expect(jsapi).toMatchObject({ errcode: 0, errmsg: "ok", ticket: rpc.token?.value });
    expect(Math.abs(Number(jsapi.expires_in) - Number(rpc.token?.expiresIn))).toBeLessThanOrEqual(
      1,
    );
    expect(card.errcode).toBe(0);
    expect(card.ticket).not.toBe(jsapi.ticket);
    expect(b.calls("/cgi-bin/ticket/getticket", SHOP.appid)).toBe(2);
  });

  it("answers 41001, 40001 and 40097 as WeChat does", async () => {
    const { access_token } = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    expect((await b.get("/cgi-bin/ticket/getticket", { type: "jsapi" })).errcode).toBe(41001);
    const foreign = "1_not-a-token-this-broker-issued-000000000000000";
    expect(
      (await b.get("/cgi-bin/ticket/getticket", { access_token: foreign, type: "jsapi" })).errcode,
    ).toBe(40001);
    expect(
      (
        await b.get("/cgi-bin/ticket/getticket", {
          access_token: String(access_token),
          type: "nope",
        })
      ).errcode,
    ).toBe(40097);
  });

  it("refuses a token once a caller reported WeChat rejected it (40001, as WeChat would)", async () => {
    const old = String((await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))).access_token);
    expect(
      (await b.get("/cgi-bin/ticket/getticket", { access_token: old, type: "jsapi" })).errcode,
    ).toBe(0);
    const fresh = await b.get("/cgi-bin/token", {
      ...tokenQuery(SHOP, SHOP.secret),
      rejected: old,
    });
    expect(fresh.access_token).not.toBe(old);
    expect(
      (await b.get("/cgi-bin/ticket/getticket", { access_token: old, type: "jsapi" })).errcode,
    ).toBe(40001);
    const ticket = await b.get("/cgi-bin/ticket/getticket", {
      access_token: String(fresh.access_token),
      type: "jsapi",
    });
    expect(ticket.errcode).toBe(0);
  });
});
