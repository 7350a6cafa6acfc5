import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { describeLeakReport, scanLeakRecords } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, KEYS, MINI, SHOP, startFacadeBroker, tokenQuery } from "./helpers.js";

/**
 * Issue 13, the façade as an attacker meets it, over plain HTTP on the
 * Connect port and on a listener of its own: a wrong secret, another app's
 * secret, an API key without rights to the app or the kind, force_refresh
 * without the permission, an address outside the allowlist, and a
 * client over its rate limit get WeChat's errcodes and no credential; each
 * refusal is on the audit stream and in the metrics; and no AppSecret, API
 * key or token reaches a log line, an audit line, an error or the metrics
 * (the suite's leak scanner over this test's own recording, besides the
 * suite-wide scan every test is part of).
 */

const dir = mkdtempSync(join(tmpdir(), "facade-security-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let b: FacadeBroker | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

describe.each([
  ["the Connect port", {}],
  ["a listener of its own", { facade: { listen: "127.0.0.1:0" } }],
])("on %s", (where, facadeConfig) => {
  it("refuses every attacker with WeChat's errcodes, audits and counts each refusal, and leaks nothing", async () => {
    const logs = logSink();
    const audit = logSink();
    const h = await startFacadeBroker({
      logger: logs.logger,
      audit: audit.logger,
      config: { ...facadeConfig, metrics: { listen: "127.0.0.1:0" } },
    });
    b = h;
    expect(h.url.startsWith("http://")).toBe(true);
    if (where !== "the Connect port") {
      // The Connect port then serves RPCs only.
      const onConnect = await fetch(
        `${h.broker.connect.url}/cgi-bin/token?${new URLSearchParams(tokenQuery(SHOP, SHOP.secret))}`,
      );
      expect(onConnect.status).toBe(404);
    }
    const bodies: string[] = [];
    const attempt = async (p: Promise<Record<string, unknown>>, errcode: number) => {
      const body = await p;
      bodies.push(JSON.stringify(body));
      expect(body.errcode, JSON.stringify(body)).toBe(errcode);
      expect(body.access_token).toBeUndefined();
      expect(body.ticket).toBeUndefined();
    };
    const token = String(
      (await h.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret))).access_token,
    );
    const upstreamBefore = h.calls("/cgi-bin/token") + h.calls("/cgi-bin/stable_token");

    // A wrong secret, and the other app's (real) secret.
    await attempt(
      h.get("/cgi-bin/token", tokenQuery(SHOP, "shopAppSecretGuess00000000000000")),
      40125,
    );
    await attempt(h.get("/cgi-bin/token", tokenQuery(SHOP, MINI.secret)), 40125);
    await attempt(
      h.post("/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid: MINI.appid,
        secret: SHOP.secret,
      }),
      40125,
    );
    // A Bearer key nobody has, and a malformed header.
    await attempt(
      h.get(
        "/cgi-bin/token",
        { grant_type: "client_credential", appid: SHOP.appid },
        { authorization: "Bearer not-a-key-of-this-broker-000000" },
      ),
      40125,
    );
    await attempt(
      h.get(
        "/cgi-bin/token",
        { grant_type: "client_credential", appid: SHOP.appid },
        { authorization: "Basic abc" },
      ),
      40125,
    );
    // API keys without rights: orders may not use mini; tickets may read only shop's jsapi ticket.
    await attempt(
      h.post("/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid: MINI.appid,
        secret: KEYS.orders,
      }),
      48001,
    );
    await attempt(h.get("/cgi-bin/token", tokenQuery(SHOP, KEYS.tickets)), 48001);
    const bearer = { authorization: `Bearer ${KEYS.tickets}` };
    expect(
      (await h.get("/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" }, bearer))
        .errcode,
    ).toBe(0);
    await attempt(
      h.get("/cgi-bin/ticket/getticket", { access_token: token, type: "wx_card" }, bearer),
      48001,
    );
    // A token the broker did not issue opens nothing.
    await attempt(
      h.get("/cgi-bin/ticket/getticket", { access_token: `${token}x`, type: "jsapi" }),
      40001,
    );
    // force_refresh without the admin permission: the current token, nothing rotated.
    const stable = await h.post("/cgi-bin/stable_token", {
      grant_type: "client_credential",
      appid: MINI.appid,
      secret: MINI.secret,
    });
    const stableCalls = h.calls("/cgi-bin/stable_token", MINI.appid);
    for (let i = 0; i < 5; i++) {
      const forced = await h.post("/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid: MINI.appid,
        secret: MINI.secret,
        force_refresh: true,
      });
      expect(forced.access_token).toBe(stable.access_token);
    }
    expect(h.calls("/cgi-bin/stable_token", MINI.appid)).toBe(stableCalls);
    // Nothing the attacker did reached WeChat's token endpoints.
    expect(h.calls("/cgi-bin/token") + h.calls("/cgi-bin/stable_token")).toBe(upstreamBefore + 1);

    const events = audit.lines().map((l) => `${String(l.event)}:${String(l.method)}`);
    expect(events).toEqual(
      expect.arrayContaining([
        "auth_failure:GetToken",
        "permission_denied:GetToken",
        "permission_denied:ForceRefresh",
      ]),
    );
    const metrics = await (await fetch(`${h.broker.metricsUrl}metrics`)).text();
    expect(metrics).toMatch(
      /tokenbroker_rpc_handled_total\{service="wechat\.Facade",method="\/cgi-bin\/token",code="errcode_40125"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /tokenbroker_rpc_handled_total\{service="tokenbroker\.v1\.TokenService",method="GetToken",code="unauthenticated"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /tokenbroker_rpc_handled_total\{service="tokenbroker\.v1\.TokenService",method="GetToken",code="permission_denied"\} [1-9]/,
    );

    await h.close();
    b = undefined;
    const secrets = [SHOP.secret, MINI.secret, ...Object.values(KEYS)];
    const issued = [token, String(stable.access_token)];
    const shown = [bodies.join("\n"), metrics].join("\n");
    for (const s of [...secrets, ...issued]) expect(shown).not.toContain(s);
    const sub = join(dir, where.replace(/\W+/g, "-"));
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    writeFileSync(
      join(sub, "values-test.ndjson"),
      [
        ...secrets.map((value) => ({ kind: "secret", value })),
        ...issued.map((value) => ({ kind: "access_token", value })),
      ]
        .map((c) => `${JSON.stringify(c)}\n`)
        .join(""),
    );
    writeFileSync(join(sub, "logs-broker.log"), logs.text());
    writeFileSync(join(sub, "logs-audit.log"), audit.text());
    writeFileSync(join(sub, "logs-shown.log"), `${shown}\n`);
    const report = scanLeakRecords(sub);
    expect(report.hits, describeLeakReport(report)).toEqual([]);
    expect(report.values.secret).toBe(secrets.length);
    expect(report.logLines).toBeGreaterThan(10);
  });
});

describe("the address allowlist", () => {
  it("applies to the façade as to RPCs: 40164 for a forwarded-for address outside it, and to forwarded calls", async () => {
    const audit = logSink();
    b = await startFacadeBroker({
      logger: logSink().logger,
      audit: audit.logger,
      config: { security: { allowCidrs: ["10.0.0.0/8"], trustedProxies: ["127.0.0.0/8"] } },
    });
    const inside = { "x-forwarded-for": "10.1.2.3" };
    const outside = { "x-forwarded-for": "203.0.113.9" };
    const ok = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret), inside);
    expect(ok.access_token).toBeTypeOf("string");
    const denied = await b.get("/cgi-bin/token", tokenQuery(SHOP, SHOP.secret), outside);
    expect(denied.errcode).toBe(40164);
    expect(denied.access_token).toBeUndefined();
    // Not even a wrong secret is judged for an address outside: the same answer.
    expect(
      (await b.get("/cgi-bin/token", tokenQuery(SHOP, "wrong-000000000000000000"), outside))
        .errcode,
    ).toBe(40164);
    const fwd = await b.get(
      "/cgi-bin/getcallbackip",
      { access_token: String(ok.access_token) },
      outside,
    );
    expect(fwd.errcode).toBe(40164);
    expect(b.calls("/cgi-bin/getcallbackip")).toBe(0);
    expect(audit.lines().filter((l) => l.event === "address_denied").length).toBeGreaterThanOrEqual(
      2,
    );
  });
});

describe("rate limits", () => {
  it("are the client's own, shared with its RPCs: 45011 over them", async () => {
    const audit = logSink();
    b = await startFacadeBroker({
      logger: logSink().logger,
      audit: audit.logger,
      config: {
        security: {
          clients: [
            {
              id: "slow",
              apiKeySha256: createHash("sha256").update(KEYS.orders).digest("hex"),
              apps: ["shop"],
              permissions: ["get"],
              ratePerSecond: 0.01,
              burst: 2,
            },
          ],
        },
      },
    });
    const answers = [];
    for (let i = 0; i < 3; i++)
      answers.push(await b.get("/cgi-bin/token", tokenQuery(SHOP, KEYS.orders)));
    expect(answers.map((a) => a.errcode ?? 0)).toEqual([0, 0, 45011]);
    expect(audit.lines().some((l) => l.event === "rate_limited" && l.client === "slow")).toBe(true);
  });
});
