import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import * as tlsClient from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createTestPki, type TestCa, type TestPki } from "../helpers/certs.js";
import { logSink } from "../helpers/log-sink.js";

const SHOP = { id: "shop", appid: "wx00000000000000s1", secret: "shop-secret-000000000" };
const METRICS_KEY = "metrics-key-3c9d1e7f0a";
const CLIENT_KEY = "client-key-8b2e4f6a1c";

let pki: TestPki;
let ca: TestCa;
let tls: { certFile: string; keyFile: string };
beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa("metrics-test-ca");
  const server = await ca.serverCert();
  tls = { certFile: server.certFile, keyFile: server.keyFile };
});
afterAll(async () => {
  await pki.cleanup();
});

let h: BrokerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(config: Record<string, unknown>, logger = logSink().logger) {
  h = await startBrokerHarness([SHOP], 500, { logger, config });
  return h;
}

const keyedClient = {
  id: "shop-service",
  apiKeySha256: hashApiKey(CLIENT_KEY),
  apps: ["shop"],
  permissions: ["get"],
};

type Answer = { status: number; body: string } | { error: string };

/** GET `url` with Node's own client (fetch cannot take a private CA). */
function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const request = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(url, { headers, ca: ca.cert, timeout: 10_000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

/** A TLS 1.2 handshake offering only `cipher`: the suite agreed, or the error. */
function handshake(port: number, cipher: string): Promise<{ cipher: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsClient.connect({
      host: "127.0.0.1",
      port,
      ca: ca.cert,
      ciphers: cipher,
      maxVersion: "TLSv1.2",
    });
    socket.once("secureConnect", () => {
      resolve({ cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.once("error", (err) => resolve({ error: err.message }));
  });
}

describe("metrics listener protection (issue 9 item 7)", () => {
  it("serves over TLS with security.tls's certificate and wants its key", async () => {
    const b = await start({
      security: { tls, clients: [keyedClient] },
      metrics: { listen: "127.0.0.1:0", apiKeySha256: hashApiKey(METRICS_KEY) },
    });
    const url = b.broker.metricsUrl ?? "";
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);

    expect(await get(`${url}metrics`)).toMatchObject({ status: 401 });
    expect(await get(`${url}metrics`, { authorization: `Bearer ${METRICS_KEY}x` })).toMatchObject({
      status: 401,
    });
    expect(await get(`${url}metrics`, { authorization: CLIENT_KEY })).toMatchObject({
      status: 401,
    });
    const ok = await get(`${url}metrics`, { authorization: `Bearer ${METRICS_KEY}` });
    expect(ok).toMatchObject({ status: 200 });
    expect((ok as { body: string }).body).toMatch(/^# TYPE tokenbroker_credential_\w+ gauge$/m);
    // The health probe tells nothing and needs no key.
    expect(await get(`${url}healthz`)).toEqual({ status: 200, body: "ok" });
    // Plain HTTP to the TLS port gets no metrics.
    const plain = await get(`${url.replace("https:", "http:")}metrics`, {
      authorization: `Bearer ${METRICS_KEY}`,
    });
    expect(plain).not.toMatchObject({ status: 200 });
    // The RPC listeners' cipher policy: no CBC/SHA-1 for TLS 1.2 clients.
    const port = Number(new URL(url).port);
    expect(await handshake(port, "ECDHE-ECDSA-AES128-SHA")).toHaveProperty("error");
    expect(await handshake(port, "ECDHE-ECDSA-AES128-GCM-SHA256")).toEqual({
      cipher: "ECDHE-ECDSA-AES128-GCM-SHA256",
    });
  });

  it("closes connections from outside its allowlist before TLS or HTTP", async () => {
    const b = await start({
      security: { tls, clients: [keyedClient] },
      metrics: {
        listen: "127.0.0.1:0",
        apiKeySha256: hashApiKey(METRICS_KEY),
        allowCidrs: ["10.0.0.0/8"],
      },
    });
    const answer = await get(`${b.broker.metricsUrl}metrics`, {
      authorization: `Bearer ${METRICS_KEY}`,
    });
    expect(answer).toHaveProperty("error");
    expect(answer).not.toHaveProperty("status");
  });

  it("takes security.allowCidrs when it has none of its own", async () => {
    const b = await start({
      security: { clients: [keyedClient], allowCidrs: ["10.0.0.0/8"] },
      metrics: { listen: "127.0.0.1:0" },
    });
    expect(b.broker.metricsUrl).toMatch(/^http:/);
    expect(await get(`${b.broker.metricsUrl}metrics`)).toHaveProperty("error");
  });
});

describe("plaintext with API keys beyond loopback (issue 9 item 8)", () => {
  it("when explicitly allowed, warns loudly at start", async () => {
    const logs = logSink();
    await start(
      {
        listen: { grpc: "0.0.0.0:0", connect: "127.0.0.1:0" },
        security: { clients: [keyedClient], allowPlaintextNonLoopback: true },
      },
      logs.logger,
    );
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: "warn",
        listeners: ["grpc"],
        msg: expect.stringMatching(/^PLAINTEXT WITH API KEYS: .*cleartext/),
      }),
    );
  });

  it("says nothing of the kind on loopback", async () => {
    const logs = logSink();
    await start({ security: { clients: [keyedClient] } }, logs.logger);
    expect(logs.text()).not.toContain("PLAINTEXT");
  });
});
