import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";
import { CLIENTS, type FacadeBroker, KEYS, startFacadeBroker } from "./helpers.js";

/**
 * Issue 13, the façade's WeCom endpoints: gettoken with each app's own
 * secret gives that app's broker token, get_jsapi_ticket and
 * ticket/get?type=agent_config the broker's tickets, all with `errcode: 0`
 * as WeCom answers, and WeCom's errcodes for the rest (40001 is a wrong
 * secret there, 40014 an unknown token).
 */

const CORP = "ww00000000facade01";
// Shaped like WeCom's: 43 characters.
const HR = { agentid: 1000002, secret: "hrAgentSecretFacade0001_abcdefghijklmnopqrs" };
const OA = { agentid: 1000003, secret: "oaAgentSecretFacade0001_abcdefghijklmnopqrs" };
const HR_KEY = "facade-wecom-hr-key-0123456789abcdefghijklm";
recordLeakCandidate("secret", HR_KEY);

let b: FacadeBroker;
beforeAll(async () => {
  b = await startFacadeBroker({
    logger: logSink().logger,
    apps: [],
    wecomApps: [
      { id: "hr", corpid: CORP, agentid: String(HR.agentid), secret: HR.secret },
      { id: "oa", corpid: CORP, agentid: String(OA.agentid), secret: OA.secret },
    ],
    emulator: { wecom: { corps: [{ corpid: CORP, apps: [HR, OA] }] } },
    config: {
      security: {
        clients: [
          ...CLIENTS,
          {
            id: "hr-service",
            apiKeySha256: createHash("sha256").update(HR_KEY).digest("hex"),
            apps: ["hr"],
            permissions: ["get"],
          },
        ],
      },
    },
  });
});
afterAll(async () => {
  await b?.close();
});

const gettoken = (params: Record<string, string>) => b.get("/cgi-bin/gettoken", params);

describe("GET /cgi-bin/gettoken", () => {
  it("gives each app's secret that app's broker token, from one WeCom call per app", async () => {
    const hr = await Promise.all(
      Array.from({ length: 20 }, () => gettoken({ corpid: CORP, corpsecret: HR.secret })),
    );
    const oa = await gettoken({ corpid: CORP, corpsecret: OA.secret });
    const rpc = await b.tokens.getToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN });
    for (const a of hr) {
      expect(a).toMatchObject({ errcode: 0, errmsg: "ok", access_token: rpc.token?.value });
      expect(Math.abs(Number(a.expires_in) - Number(rpc.token?.expiresIn))).toBeLessThanOrEqual(1);
    }
    expect(oa.errcode).toBe(0);
    expect(oa.access_token).not.toBe(rpc.token?.value);
    expect(b.calls("/cgi-bin/gettoken", `${CORP}/${HR.agentid}`)).toBe(1);
    expect(b.calls("/cgi-bin/gettoken", `${CORP}/${OA.agentid}`)).toBe(1);
  });

  it("answers WeCom's errcodes: 40001 for a wrong secret, 41004, 41002, 40013", async () => {
    const before = b.calls("/cgi-bin/gettoken");
    const wrong = "hrAgentSecretWrongFacade_abcdefghijklmnopqr";
    recordLeakCandidate("secret", wrong);
    expect((await gettoken({ corpid: CORP, corpsecret: wrong })).errcode).toBe(40001);
    expect((await gettoken({ corpid: CORP })).errcode).toBe(41004);
    expect((await gettoken({ corpsecret: HR.secret })).errcode).toBe(41002);
    expect((await gettoken({ corpid: "ww00000000unknown9", corpsecret: HR.secret })).errcode).toBe(
      40013,
    );
    expect(b.calls("/cgi-bin/gettoken")).toBe(before);
  });

  it("takes an API key: the one app of the corp the client may use, or the app its agentid names", async () => {
    const hr = await gettoken({ corpid: CORP, corpsecret: HR.secret });
    expect((await gettoken({ corpid: CORP, corpsecret: HR_KEY })).access_token).toBe(
      hr.access_token,
    );
    // ops may use both apps: it has to say which.
    expect((await gettoken({ corpid: CORP, corpsecret: KEYS.ops })).errcode).toBe(40097);
    const oa = await gettoken({ corpid: CORP, corpsecret: KEYS.ops, agentid: String(OA.agentid) });
    expect(oa.access_token).toBe(
      (await gettoken({ corpid: CORP, corpsecret: OA.secret })).access_token,
    );
    expect((await gettoken({ corpid: CORP, corpsecret: KEYS.ops, agentid: "42" })).errcode).toBe(
      40097,
    );
    // hr-service may not use oa, whatever agentid it names.
    const denied = await gettoken({
      corpid: CORP,
      corpsecret: HR_KEY,
      agentid: String(OA.agentid),
    });
    expect(denied.errcode).toBe(48001);
  });
});

describe("WeCom's ticket endpoints", () => {
  it("give the corp's and the agent's ticket to the holder of the app's token", async () => {
    const { access_token } = await gettoken({ corpid: CORP, corpsecret: HR.secret });
    const token = String(access_token);
    const corp = await b.get("/cgi-bin/get_jsapi_ticket", { access_token: token });
    const agent = await b.get("/cgi-bin/ticket/get", { access_token: token, type: "agent_config" });
    const rpcCorp = await b.tokens.getToken({ appId: "hr", kind: TokenKind.JSAPI_TICKET });
    const rpcAgent = await b.tokens.getToken({ appId: "hr", kind: TokenKind.WECOM_AGENT_TICKET });
    expect(corp).toMatchObject({ errcode: 0, errmsg: "ok", ticket: rpcCorp.token?.value });
    expect(agent).toMatchObject({ errcode: 0, errmsg: "ok", ticket: rpcAgent.token?.value });
    expect(Number(agent.expires_in)).toBeGreaterThan(0);
  });

  it("answer 40014 for a token the broker did not issue, 41001 without one, 40097 for another type", async () => {
    const { access_token } = await gettoken({ corpid: CORP, corpsecret: HR.secret });
    const foreign = "someone-elses-wecom-token-facade-0000000001";
    expect((await b.get("/cgi-bin/get_jsapi_ticket", { access_token: foreign })).errcode).toBe(
      40014,
    );
    expect((await b.get("/cgi-bin/get_jsapi_ticket", {})).errcode).toBe(41001);
    expect(
      (await b.get("/cgi-bin/ticket/get", { access_token: String(access_token), type: "jsapi" }))
        .errcode,
    ).toBe(40097);
  });
});
