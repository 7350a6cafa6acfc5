import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigErrors } from "../../src/config/config.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { untrustedIp, wecomErrcodes } from "../../src/credentials/wecom/errcodes.js";

const environment = {
  env: { HR_SECRET: "hr-agent-secret-0001", SYNC_SECRET: "contacts-secret-0001" } as Record<
    string,
    string | undefined
  >,
  readFile: () => {
    throw Object.assign(new Error("nope"), { code: "ENOENT" });
  },
};

describe("a WeCom app in the config", () => {
  it("takes corpid, agentid and the app's own secret; WeCom's host is its own setting", () => {
    const config = parseConfig(
      parse(`
upstream: { wecomBaseUrl: "http://127.0.0.1:9999/" }
apps:
  - { id: hr, type: wecom, corpid: ww00000000000000a1, agentid: "1000002", secret: { env: HR_SECRET } }
  - { id: sync, type: wecom, corpid: ww00000000000000a1, secret: { env: SYNC_SECRET }, kinds: [access_token] }
`),
      environment,
    );
    expect(config.upstream.wecomBaseUrl).toBe("http://127.0.0.1:9999");
    expect(config.apps[0]).toMatchObject({
      id: "hr",
      type: "wecom",
      appid: "ww00000000000000a1",
      agentid: "1000002",
    });
    expect(config.apps[0]?.secret.reveal()).toBe("hr-agent-secret-0001");
    expect(config.apps[1]).toMatchObject({ id: "sync", kinds: ["access_token"] });
    expect(config.apps[1]).not.toHaveProperty("agentid");
    expect(JSON.stringify(config)).not.toContain("agent-secret");
  });

  it("names the key of a bad agentid, a missing corpid and a kind WeCom apps do not have", () => {
    try {
      parseConfig(
        parse(`
apps:
  - { id: a, type: wecom, corpid: ww1, agentid: "x1", secret: { env: HR_SECRET } }
  - { id: b, type: wecom, secret: { env: HR_SECRET } }
  - { id: c, type: wecom, corpid: ww1, secret: { env: HR_SECRET }, kinds: [access_token, wx_card_ticket] }
`),
        environment,
      );
      expect.unreachable();
    } catch (err) {
      const text = (err as ConfigErrors).message;
      expect(err).toBeInstanceOf(ConfigErrors);
      expect(text).toContain("apps[0].agentid");
      expect(text).toContain("apps[1].corpid");
      expect(text).toContain("apps[2].kinds[1]");
      expect(text).toContain("wecom_agent_ticket");
    }
  });
});

describe("WeCom's errcodes", () => {
  it("read 40001 as a wrong secret and 40014/42001 as a stale token, not the official-account way", () => {
    expect(wecomErrcodes.classify(40001, "/cgi-bin/gettoken")).toBe("config");
    expect(wecomErrcodes.classify(40001, "/cgi-bin/get_jsapi_ticket")).toBe("config");
    expect(wecomErrcodes.remedy(40001, "/cgi-bin/gettoken")).toContain("secret");
    expect(wecomErrcodes.classify(42001, "/cgi-bin/ticket/get")).toBe("token");
    expect(wecomErrcodes.classify(40014, "/cgi-bin/get_jsapi_ticket")).toBe("token");
    expect(wecomErrcodes.stale).toEqual([40014, 42001]);
    expect(wecomErrcodes.classify(45009, "/cgi-bin/gettoken")).toBe("quota");
    expect(wecomErrcodes.classify(-1, "/cgi-bin/gettoken")).toBe("retryable");
  });

  it("name the IP to trust for 60020, from WeCom's errmsg", () => {
    const errmsg =
      "not allow to access from your ip, hint: [1700000000_1_abc], from ip: 203.0.113.7";
    expect(untrustedIp(errmsg)).toBe("203.0.113.7");
    expect(wecomErrcodes.classify(60020, "/cgi-bin/gettoken")).toBe("config");
    expect(wecomErrcodes.remedy(60020, "/cgi-bin/gettoken", errmsg)).toContain("203.0.113.7");
    expect(wecomErrcodes.remedy(60020, "/cgi-bin/gettoken")).toContain("trusted IPs");
  });
});
