import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigErrors } from "../../src/config/config.js";
import { parseConfig, securityPolicyOf } from "../../src/config/parse-config.js";
import { hashApiKey } from "../../src/security/index.js";
import { compilePolicy } from "../../src/security/policy.js";

const HASH = hashApiKey("k-1");
const environment = { env: {}, readFile: () => "" };

/** The security section of a config, through the one validation it gets. */
const security = (yaml: string) => parseConfig(parse(`security: ${yaml}`), environment).security;

/** Every problem the config schema finds in `clients`, as "key: message" lines. */
function problems(clients: string, extra = ""): string[] {
  try {
    security(`{ clients: [${clients}] ${extra} }`);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  return [];
}

describe("hashApiKey", () => {
  it("is the hex SHA-256 of the key", () => {
    expect(hashApiKey("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("refuses an empty key", () => {
    expect(() => hashApiKey("")).toThrow(/must not be empty/);
  });
});

describe("clients are validated once, by the config schema", () => {
  it("accepts clients recognised by a key or a certificate name, and no clients at all", () => {
    expect(
      problems(`{ id: a, apiKeySha256: "${HASH}", apps: [shop], permissions: [get] }`),
    ).toEqual([]);
    expect(
      problems(`{ id: b, tlsIdentity: b.internal, apps: ["*"], permissions: [admin] }`),
    ).toEqual([]);
    expect(problems("")).toEqual([]);
  });

  it("names each problem with the key of its client, all in one report", () => {
    const found = problems(
      [
        `{ id: a, apiKeySha256: abc, apps: [shop], permissions: [get] }`,
        `{ id: b, apps: [shop], permissions: [get] }`,
        `{ id: c, apiKeySha256: "${hashApiKey("c")}", apps: [], permissions: [get] }`,
        `{ id: d, apiKeySha256: "${hashApiKey("d")}", apps: [bad/app], kinds: [access_token, oauth], permissions: [get] }`,
        `{ id: e, apiKeySha256: "${hashApiKey("e")}", apps: [shop], permissions: [get, root] }`,
        `{ id: f, apiKeySha256: "${hashApiKey("f")}", apps: [shop], permissions: [get], ratePerSecond: 0, burst: 0.5, maxWatchStreams: 1.5 }`,
        `{ id: g, apiKeySha256: "${hashApiKey("g")}", apps: [shop], kinds: [], permissions: [] }`,
        `{ id: anonymous, apiKeySha256: "${hashApiKey("anon")}", apps: [shop], permissions: [get] }`,
        `{ id: "has space", apiKeySha256: "${hashApiKey("s")}", apps: [shop], permissions: [get] }`,
        `{ id: h, apiKeySha256: "${hashApiKey("h")}", apps: [shop], permissions: [get] }`,
      ].join(", "),
    );
    const at = (i: number, rest: string) => `config key 'security.clients[${i}]${rest}`;
    expect(found).toEqual([
      at(
        0,
        ".apiKeySha256': expected 64 hex characters (SHA-256 of the key; see `token-broker hash-key`)",
      ),
      at(1, "': needs apiKeySha256 or tlsIdentity to recognise the client"),
      at(2, `.apps': list the app ids it may use, or ["*"]`),
      at(3, `.apps[0]': "bad/app" is not an app id or "*"`),
      at(
        3,
        ".kinds[1]': expected one of access_token, jsapi_ticket, wx_card_ticket, user_access_token, wecom_agent_ticket",
      ),
      at(4, ".permissions[1]': expected one of get, watch, invalidate, admin, oauth"),
      at(5, ".ratePerSecond': expected a number from 0.01 to 100000, got 0"),
      at(5, ".burst': expected a number from 1 to 1000000, got 0.5"),
      at(5, ".maxWatchStreams': expected a whole number from 1 to 100000, got 1.5"),
      at(6, ".kinds': is empty: leave it out to allow every kind"),
      at(6, ".permissions': expected at least one of get, watch, invalidate, admin, oauth"),
      at(7, ".id': 'anonymous' is reserved for callers when no clients are configured"),
      at(8, ".id': 1-128 printable characters without spaces"),
    ]);
  });

  it("refuses duplicate ids, keys (in any case) and certificate names, even beside other problems", () => {
    const found = problems(
      [
        `{ id: a, apiKeySha256: "${HASH}", tlsIdentity: cn, apps: [shop], permissions: [get] }`,
        `{ id: a, apiKeySha256: "${HASH.toUpperCase()}", tlsIdentity: cn, apps: [shop], permissions: [get], burst: 0 }`,
      ].join(", "),
    );
    expect(found).toEqual([
      "config key 'security.clients[1].burst': expected a number from 1 to 1000000, got 0",
      "config key 'security.clients[1].id': duplicate client id 'a'",
      "config key 'security.clients[1].apiKeySha256': is used by another client: each client needs its own key",
      "config key 'security.clients[1].tlsIdentity': is used by another client",
    ]);
  });

  it("refuses the hash of an empty key", () => {
    expect(
      problems(
        "{ id: a, apiKeySha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, apps: [shop], permissions: [get] }",
      ),
    ).toEqual(["config key 'security.clients[0].apiKeySha256': is the hash of an empty key"]);
  });

  it("refuses bad CIDRs, naming the entry and what is wrong with it", () => {
    expect(
      problems("", ", allowCidrs: [10.0.0.0/8, 10.1.2.3/8, 10.0.0.1], trustedProxies: [proxy/8]"),
    ).toEqual([
      "config key 'security.allowCidrs[1]': '10.1.2.3/8' has host bits set: write the network address (10.0.0.0/8) or a /32 for the one host",
      "config key 'security.allowCidrs[2]': expected a CIDR like 10.0.0.0/8 or fd00::/8",
      "config key 'security.trustedProxies[0]': 'proxy/8' is not a CIDR: expected e.g. 10.0.0.0/8 or 2001:db8::/32",
    ]);
  });
});

describe("compilePolicy", () => {
  it("compiles validated clients for lookups: key bytes, app and kind sets, default limits", () => {
    const config = security(`{
      clients: [
        { id: orders, apiKeySha256: "${HASH.toUpperCase()}", apps: [shop], kinds: [access_token], permissions: [get, watch], ratePerSecond: 5 },
        { id: ops, tlsIdentity: ops.internal, apps: ["*"], permissions: [admin], maxWatchStreams: 3 }
      ],
      allowCidrs: [10.0.0.0/8],
      trustedProxies: ["fd00::/8"]
    }`);
    const policy = compilePolicy(securityPolicyOf(config));
    const [orders, ops] = policy.clients;
    expect(orders).toEqual({
      id: "orders",
      keyHash: Buffer.from(HASH, "hex"),
      tlsIdentity: undefined,
      apps: new Set(["shop"]),
      kinds: new Set(["access_token"]),
      // Users' credentials only where userTokenApps names the app: none here.
      userTokenApps: new Set(),
      permissions: new Set(["get", "watch"]),
      limits: {
        ratePerSecond: 5,
        burst: 100,
        reportRatePerSecond: 5,
        reportBurst: 20,
        maxWatchStreams: 20,
      },
    });
    expect(ops).toMatchObject({
      keyHash: undefined,
      tlsIdentity: "ops.internal",
      apps: undefined,
      kinds: undefined,
      limits: { maxWatchStreams: 3 },
    });
    expect(policy.allow.map((c) => c.text)).toEqual(["10.0.0.0/8"]);
    expect(policy.trustedProxies.map((c) => c.text)).toEqual(["fd00::/8"]);
  });

  it("without clients, every caller is the anonymous client with every permission and no limits", () => {
    const policy = compilePolicy(securityPolicyOf(security("{}")));
    expect(policy.clients).toEqual([]);
    expect(policy.anonymous).toMatchObject({ id: "anonymous", apps: undefined, limits: undefined });
    expect([...policy.anonymous.permissions]).toEqual([
      "get",
      "watch",
      "invalidate",
      "admin",
      "oauth",
    ]);
    expect(policy.anonymous.userTokenApps).toBeUndefined();
    expect(policy.allow).toEqual([]);
  });
});
