import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigErrors } from "../../src/config/config.js";
import { parseConfig, plaintextListeners } from "../../src/config/parse-config.js";

const environment = { env: {}, readFile: () => "" };
const HASH = "a".repeat(64);
const KEYED_CLIENT = `clients: [{ id: orders, apiKeySha256: "${HASH}", apps: ["*"], permissions: [get] }]`;
const TLS = "tls: { certFile: /tls/crt, keyFile: /tls/key }";

const config = (yaml: string) => parseConfig(parse(yaml), environment);
/** The keys the ConfigErrors of `yaml` name (none when it parses). */
function keysOf(yaml: string): string[] {
  try {
    config(yaml);
    return [];
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.key);
    throw err;
  }
}

describe("plaintext with API keys beyond loopback (issue 9 item 8)", () => {
  it("is refused, naming each exposed listener and the way out", () => {
    const yaml = `listen: { grpc: "0.0.0.0:50051", connect: "10.0.0.5:8080" }\nsecurity: { ${KEYED_CLIENT} }`;
    expect(keysOf(yaml)).toEqual(["listen.grpc", "listen.connect"]);
    expect(() => config(yaml)).toThrow(
      /'listen.grpc': 0.0.0.0 is not a loopback address and security.tls is not set: API keys and tokens would cross the network in cleartext\. Configure security.tls, or set security.allowPlaintextNonLoopback: true/,
    );
  });

  it("is accepted with TLS, on loopback, without keys, or when explicitly allowed", () => {
    expect(keysOf(`listen: { grpc: "0.0.0.0:1" }\nsecurity: { ${TLS}, ${KEYED_CLIENT} }`)).toEqual(
      [],
    );
    expect(keysOf(`listen: { grpc: "127.0.0.1:1" }\nsecurity: { ${KEYED_CLIENT} }`)).toEqual([]);
    // Certificate identities only: nothing secret to send in clear (and no TLS, no login).
    expect(
      keysOf(
        `listen: { grpc: "0.0.0.0:1" }\nsecurity: { clients: [{ id: a, tlsIdentity: a, apps: ["*"], permissions: [get] }] }`,
      ),
    ).toEqual([]);
    const allowed = config(
      `listen: { grpc: "0.0.0.0:1" }\nsecurity: { ${KEYED_CLIENT}, allowPlaintextNonLoopback: true }`,
    );
    expect(allowed.security.allowPlaintextNonLoopback).toBe(true);
    expect(plaintextListeners(allowed)).toEqual(["grpc"]);
  });
});

describe("the metrics listener beyond loopback (issue 9 item 7)", () => {
  it("is refused without TLS, naming metrics.listen", () => {
    const yaml = `metrics: { listen: "0.0.0.0:9464", apiKeySha256: "${HASH}" }`;
    expect(keysOf(yaml)).toEqual(["metrics.listen"]);
    expect(() => config(yaml)).toThrow(
      /'metrics.listen': 0.0.0.0 is not a loopback address and the metrics listener has no TLS/,
    );
  });

  it("is refused with TLS but no key", () => {
    const yaml = `metrics: { listen: "0.0.0.0:9464" }\nsecurity: { ${TLS}, ${KEYED_CLIENT} }`;
    expect(keysOf(yaml)).toEqual(["metrics.listen"]);
    expect(() => config(yaml)).toThrow(/has no metrics.apiKeySha256/);
  });

  it("is accepted with TLS and a key, TLS and required client certificates, or the explicit flag", () => {
    const withKey = config(
      `metrics: { listen: "0.0.0.0:9464", apiKeySha256: "${HASH.toUpperCase()}" }\nsecurity: { ${TLS}, ${KEYED_CLIENT}, allowCidrs: [10.0.0.0/8] }`,
    );
    expect(withKey.metrics).toEqual({
      listen: { host: "0.0.0.0", port: 9464 },
      tls: true,
      apiKeySha256: HASH,
      allowCidrs: ["10.0.0.0/8"],
      allowUnprotectedNonLoopback: false,
    });
    expect(
      keysOf(
        `metrics: { listen: "0.0.0.0:9464" }\nsecurity: { tls: { certFile: a, keyFile: b, clientCaFile: c, requireClientCert: true }, ${KEYED_CLIENT} }`,
      ),
    ).toEqual([]);
    expect(
      config(`metrics: { listen: "0.0.0.0:9464", allowUnprotectedNonLoopback: true }`).metrics,
    ).toMatchObject({ tls: false, allowUnprotectedNonLoopback: true });
  });

  it("takes its own allowlist over security.allowCidrs, and refuses tls without security.tls", () => {
    expect(
      config(
        `metrics: { listen: "127.0.0.1:9464", allowCidrs: [192.0.2.0/24] }\nsecurity: { allowCidrs: [10.0.0.0/8] }`,
      ).metrics.allowCidrs,
    ).toEqual(["192.0.2.0/24"]);
    expect(keysOf(`metrics: { listen: "127.0.0.1:9464", tls: true }`)).toEqual(["metrics.tls"]);
    expect(keysOf(`metrics: { listen: "127.0.0.1:9464", apiKeySha256: abc }`)).toEqual([
      "metrics.apiKeySha256",
    ]);
    expect(keysOf(`metrics: { listen: "127.0.0.1:9464", allowCidrs: [nope] }`)).toEqual([
      "metrics.allowCidrs[0]",
    ]);
  });
});
