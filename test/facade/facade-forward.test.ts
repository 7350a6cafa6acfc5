import { afterEach, describe, expect, it } from "vitest";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, SHOP, startFacadeBroker, tokenQuery } from "./helpers.js";

/**
 * Issue 13: an SDK pointed at the broker sends every API call there, not
 * only its token fetches. Calls carrying a token the broker issued are
 * forwarded to WeChat unchanged; when WeChat rejects the token, the broker
 * hears it first-hand and refreshes once, however many SDK instances were
 * refused, so their "40001 → fetch again" path gets the new token.
 */

let b: FacadeBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

/** What "another party" does: fetches the app's token from WeChat itself (twice: the old one dies at once, R8). */
async function foreignRotation(h: FacadeBroker): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const res = await fetch(
      `${h.emulatorUrl}/cgi-bin/token?${new URLSearchParams(tokenQuery(SHOP, SHOP.secret))}`,
    );
    expect(((await res.json()) as { access_token?: string }).access_token).toBeTruthy();
  }
}

describe("forwarded API calls", () => {
  it("reach WeChat with the broker's token and come back unchanged", async () => {
    b = await startFacadeBroker({ logger: logSink().logger });
    const { access_token } = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    const ips = await b.get("/cgi-bin/getcallbackip", { access_token: String(access_token) });
    expect(Array.isArray(ips.ip_list)).toBe(true);
    expect(b.calls("/cgi-bin/getcallbackip", SHOP.appid)).toBe(1);
    // A POST with a JSON body (what most business APIs are).
    const res = await fetch(
      `${b.url}/cgi-bin/openapi/quota/get?access_token=${String(access_token)}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ cgi_path: "/cgi-bin/token" }),
      },
    );
    const quota = (await res.json()) as { errcode: number; quota?: { used: number } };
    expect(quota.errcode).toBe(0);
    expect(quota.quota?.used).toBe(1);
  });

  it("are refused unless they carry a token the broker issued: the façade is no open proxy", async () => {
    b = await startFacadeBroker({ logger: logSink().logger });
    const foreign = await b.get("/cgi-bin/getcallbackip", {
      access_token: "1_someone-elses-token-000000000000000000000000",
    });
    expect(foreign.errcode).toBe(40001);
    expect((await b.get("/cgi-bin/getcallbackip", {})).errcode).toBe(41001);
    expect(b.calls("/cgi-bin/getcallbackip")).toBe(0);
  });

  it("make 40001 after another party's fetch cost one refresh for 5 SDK instances", async () => {
    b = await startFacadeBroker({ logger: logSink().logger });
    const h = b;
    const token = String(
      (await h.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))).access_token,
    );
    await foreignRotation(h);
    // Five instances holding the dead token call an API through the façade.
    const refused = await Promise.all(
      Array.from({ length: 5 }, () => h.get("/cgi-bin/getcallbackip", { access_token: token })),
    );
    for (const r of refused) expect(r.errcode).toBe(40001);
    // Each then fetches again, as SDKs do on 40001, and retries with what it gets.
    const again = await Promise.all(
      Array.from({ length: 5 }, () => h.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))),
    );
    const fresh = again[0]?.access_token;
    expect(fresh).not.toBe(token);
    for (const a of again) expect(a.access_token).toBe(fresh);
    const retried = await h.get("/cgi-bin/getcallbackip", { access_token: String(fresh) });
    expect(Array.isArray(retried.ip_list)).toBe(true);
    // WeChat saw the broker's first fetch, the other party's two and one refresh.
    expect(h.calls("/cgi-bin/token", SHOP.appid)).toBe(4);
    expect(h.broker.manager.refreshesWritten).toBe(2);
  });

  it("turn into a 404 in WeChat's shape when forwarding is off", async () => {
    b = await startFacadeBroker({
      logger: logSink().logger,
      config: { facade: { forward: false } },
    });
    const { access_token } = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret));
    const res = await fetch(`${b.url}/cgi-bin/getcallbackip?access_token=${String(access_token)}`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errcode: number }).errcode).toBe(40066);
    expect(b.calls("/cgi-bin/getcallbackip")).toBe(0);
  });
});

describe("facade.enabled: false", () => {
  it("leaves WeChat's paths to the Connect handler, which does not know them", async () => {
    b = await startFacadeBroker({
      logger: logSink().logger,
      config: { facade: { enabled: false } },
    });
    expect(b.broker.facadeUrl).toBeUndefined();
    const res = await fetch(
      `${b.broker.connect.url}/cgi-bin/token?${new URLSearchParams(tokenQuery(SHOP, SHOP.secret))}`,
    );
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain("access_token");
    expect(b.calls("/cgi-bin/token")).toBe(0);
  });
});
