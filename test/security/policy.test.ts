import { describe, expect, it } from "vitest";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  type ClientPolicy,
  hashApiKey,
  secure,
  validateSecurityPolicy,
} from "../../src/security/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { fakeTokenService, POLICY } from "./helpers.js";

const client = (over: Partial<ClientPolicy> = {}): ClientPolicy => ({
  id: "c",
  apiKeySha256: hashApiKey("k-1"),
  apps: ["shop"],
  permissions: ["get"],
  ...over,
});

const problems = (clients: ClientPolicy[], extra: object = {}) => {
  try {
    validateSecurityPolicy({ clients, ...extra });
  } catch (err) {
    return (err as Error).message;
  }
  return "";
};

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

describe("policy validation", () => {
  it("accepts the test policy and an empty one", () => {
    expect(problems([...POLICY.clients], POLICY)).toBe("");
    expect(problems([])).toBe("");
  });

  it("names each problem with its client", () => {
    const message = problems([
      client({ id: "a", apiKeySha256: "abc" }),
      client({ id: "b", apiKeySha256: undefined }),
      client({ id: "c", apps: [] }),
      client({ id: "d", apps: ["bad/app"], kinds: ["access_token", "oauth"] }),
      client({ id: "e", permissions: ["get", "root" as "get"] }),
      client({ id: "f", ratePerSecond: 0, burst: 0.5, maxWatchStreams: -1 }),
      client({ id: "g", kinds: [], permissions: [] }),
      client({ id: "anonymous" }),
      client({ id: "has space", apiKeySha256: hashApiKey("other") }),
      client({ id: "h", apiKeySha256: hashApiKey("x").replace(/^./, "0") }),
    ]);
    for (const expected of [
      "client 'a': apiKeySha256 must be 64 hex digits",
      "client 'b': needs apiKeySha256 or tlsIdentity",
      `client 'c': apps is empty: list app ids or ["*"]`,
      `client 'd': apps: 'bad/app' is not an app id or "*"`,
      "client 'd': kinds: 'oauth' is not one of access_token, jsapi_ticket, wx_card_ticket",
      "client 'e': permissions: 'root' is not one of get, watch, invalidate, admin",
      "client 'f': ratePerSecond must be > 0",
      "client 'f': burst must be at least 1",
      "client 'f': maxWatchStreams must be a whole number, 0 or more",
      "client 'g': kinds is empty: leave it out to allow every kind",
      "client 'g': permissions is empty",
      "client 'anonymous': id 'anonymous' is reserved",
      "client 'has space': id must be 1-128 printable characters without spaces",
    ]) {
      expect(message).toContain(expected);
    }
    expect(message).not.toContain("client 'h'");
  });

  it("refuses duplicate ids, keys and certificate names", () => {
    const message = problems([
      client({ id: "a", tlsIdentity: "cn" }),
      client({ id: "a", apiKeySha256: hashApiKey("k-1").toUpperCase(), tlsIdentity: "cn" }),
    ]);
    expect(message).toContain("client 'a': id is used by another client");
    expect(message).toContain(
      "apiKeySha256 is used by another client: each client needs its own key",
    );
    expect(message).toContain("tlsIdentity is used by another client");
  });

  it("refuses the hash of an empty key", () => {
    expect(
      problems([
        client({
          apiKeySha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }),
      ]),
    ).toContain("apiKeySha256 is the hash of an empty key");
  });

  it("refuses bad CIDRs, naming the field", () => {
    const message = problems([], {
      allowCidrs: ["10.0.0.0/8", "10.1.2.3/8"],
      trustedProxies: ["proxy"],
    });
    expect(message).toContain("allowCidrs: '10.1.2.3/8' has host bits set");
    expect(message).toContain("trustedProxies: 'proxy' is not a CIDR");
  });

  it("secure throws on an invalid policy before serving anything", () => {
    expect(() =>
      secure(TokenService, fakeTokenService().impl, {
        policy: { clients: [client({ apps: [] })] },
        clock: new FakeClock(),
        audit: silentLogger(),
      }),
    ).toThrow(/^invalid security policy:\n {2}- client 'c': apps is empty/);
  });
});
