import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  type RunningServer,
  registration,
  startConnectServer,
  startGrpcServer,
} from "../../src/server/index.js";
import {
  createTestPki,
  type IssuedCert,
  installCert,
  type TestCa,
  type TestPki,
} from "../helpers/certs.js";
import { captureLogs, testTokenService } from "./harness.js";

/**
 * Issue 9 item 9: both ports accept only Mozilla's "intermediate" profile,
 * checked with a real TLS client that offers one suite at a time (the test
 * certificate is ECDSA, so every weak suite tried would otherwise be usable).
 */

let pki: TestPki;
let ca: TestCa;
let serverCert: IssuedCert;
let servers: Record<"grpc" | "connect", RunningServer>;

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa("TLS Policy CA");
  serverCert = await ca.serverCert();
  const { logger } = captureLogs();
  const common = {
    host: "127.0.0.1",
    port: 0,
    services: [registration(TokenService, testTokenService([]))],
    logger,
    tls: { certFile: serverCert.certFile, keyFile: serverCert.keyFile },
  };
  servers = { grpc: await startGrpcServer(common), connect: await startConnectServer(common) };
});

afterAll(async () => {
  await Promise.all(Object.values(servers ?? {}).map((s) => s.close({ graceMs: 0 })));
  await pki?.cleanup();
});

/** The negotiated suite, or the handshake error's message. */
function handshake(
  port: number,
  options: Pick<tls.ConnectionOptions, "ciphers" | "minVersion" | "maxVersion">,
): Promise<{ cipher: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: ca.cert,
      ALPNProtocols: ["h2"],
      ...options,
    });
    socket.once("secureConnect", () => {
      resolve({ cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.once("error", (err) => resolve({ error: err.message }));
  });
}

const WEAK_TLS12 = [
  "ECDHE-ECDSA-AES128-SHA", // CBC with SHA-1
  "ECDHE-ECDSA-AES256-SHA384", // CBC
  "ECDHE-ECDSA-AES128-CCM8", // 64-bit tag
  "ECDHE-ECDSA-ARIA128-GCM-SHA256",
  "ECDHE-ECDSA-CAMELLIA128-SHA256",
];
const STRONG_TLS12 = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
];

describe.each(["grpc", "connect"] as const)("TLS policy on the %s port", (listener) => {
  it.each(WEAK_TLS12)("refuses a TLS 1.2 client offering only %s", async (cipher) => {
    const result = await handshake(servers[listener].port, {
      ciphers: cipher,
      maxVersion: "TLSv1.2",
    });
    expect(result).toHaveProperty("error");
  });

  it.each(STRONG_TLS12)("accepts a TLS 1.2 client offering %s", async (cipher) => {
    const result = await handshake(servers[listener].port, {
      ciphers: cipher,
      maxVersion: "TLSv1.2",
    });
    expect(result).toEqual({ cipher });
  });

  it("accepts TLS 1.3, refuses TLS 1.1", async () => {
    expect(await handshake(servers[listener].port, {})).toEqual({
      cipher: expect.stringMatching(/^TLS_/),
    });
    const old = await handshake(servers[listener].port, {
      minVersion: "TLSv1.1",
      maxVersion: "TLSv1.1",
      ciphers: "DEFAULT@SECLEVEL=0",
    });
    expect(old).toHaveProperty("error");
  });
});

describe("TLS policy after a certificate reload", () => {
  it("still refuses weak suites on both ports once the new certificate is served", async () => {
    const dir = pki.dir;
    const files = { certFile: `${dir}/policy-live.pem`, keyFile: `${dir}/policy-live.key` };
    await installCert(serverCert, files);
    const { logger } = captureLogs();
    const common = {
      host: "127.0.0.1",
      port: 0,
      services: [registration(TokenService, testTokenService([]))],
      logger,
      tls: { ...files, reloadIntervalMs: 100 },
    };
    const live = [await startGrpcServer(common), await startConnectServer(common)];
    try {
      const renewed = await ca.serverCert();
      await installCert(renewed, files);
      for (const server of live) {
        const started = Date.now();
        // Node resets the cipher list on setSecureContext unless it is passed again.
        while ((await servedSerial(server.port)) !== renewed.serialNumber) {
          if (Date.now() - started > 10_000) throw new Error("the new certificate was not served");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        for (const cipher of WEAK_TLS12) {
          expect(
            await handshake(server.port, { ciphers: cipher, maxVersion: "TLSv1.2" }),
          ).toHaveProperty("error");
        }
      }
    } finally {
      await Promise.all(live.map((s) => s.close({ graceMs: 0 })));
    }
  });
});

/** The serial number of the certificate a new connection is shown. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: ca.cert,
      ALPNProtocols: ["h2"],
    });
    socket.once("secureConnect", () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}
