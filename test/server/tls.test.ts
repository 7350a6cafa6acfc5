import { execFile } from "node:child_process";
import { copyFile } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import * as tls from "node:tls";
import { promisify } from "node:util";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type GetTokenResponse,
  TokenKind,
  TokenService,
  type WatchTokenResponse,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  type RunningServer,
  registration,
  startConnectServer,
  startGrpcServer,
  type TlsOptions,
} from "../../src/server/index.js";
import {
  createTestPki,
  type IssuedCert,
  installCert,
  replaceFile,
  type TestCa,
  type TestPki,
} from "../helpers/certs.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { type CallRecord, captureLogs, testTokenService } from "./harness.js";

const run = promisify(execFile);

interface TlsServers {
  readonly grpc: RunningServer;
  readonly connect: RunningServer;
  readonly calls: CallRecord[];
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

let servers: TlsServers | undefined;
afterEach(async () => {
  await servers?.close();
  servers = undefined;
});

/** Both listeners on port 0 with the test TokenService and the same TLS options. */
async function startTlsServers(tlsOptions: TlsOptions): Promise<TlsServers> {
  const calls: CallRecord[] = [];
  const { logger, lines } = captureLogs();
  const services = [registration(TokenService, testTokenService(calls))];
  const common = { host: "127.0.0.1", port: 0, services, logger, tls: tlsOptions };
  const grpcServer = await startGrpcServer(common);
  const connect = await startConnectServer(common).catch(async (err: unknown) => {
    await grpcServer.close({ graceMs: 0 });
    throw err;
  });
  servers = {
    grpc: grpcServer,
    connect,
    calls,
    logs: lines,
    close: async () => {
      await Promise.all([grpcServer.close({ graceMs: 0 }), connect.close({ graceMs: 0 })]);
    },
  };
  return servers;
}

/** What a client trusts and presents. */
interface Creds {
  readonly ca: string;
  readonly client?: IssuedCert | undefined;
}

interface TlsClient {
  getToken(appId: string): Promise<GetTokenResponse>;
  watchToken(appId: string, signal?: AbortSignal): AsyncIterable<WatchTokenResponse>;
  close(): void;
}

interface TlsClientKind {
  readonly name: string;
  readonly listener: "grpc" | "connect";
  readonly protocol: "grpc" | "grpc-web" | "connect";
  make(url: string, creds: Creds): TlsClient;
}

function grpcJs(url: string, creds: Creds): TlsClient {
  const target = new URL(url).host;
  const credentials = grpc.credentials.createSsl(
    Buffer.from(creds.ca),
    creds.client ? Buffer.from(creds.client.key) : null,
    creds.client ? Buffer.from(creds.client.cert) : null,
  );
  // A channel of its own (no shared subchannel), so each client has its own
  // connection; SNI "localhost" (in the server's SANs), as SNI cannot be an IP.
  const channel = new grpc.Channel(target, credentials, {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.ssl_target_name_override": "localhost",
  });
  const client = createGrpcJsClient(TokenService, target, { channelOverride: channel });
  return {
    getToken: (appId) =>
      client.getToken({ appId, kind: TokenKind.ACCESS_TOKEN }, { timeoutMs: 5_000 }),
    watchToken: (appId, signal) =>
      client.watchToken({ appId, kind: TokenKind.ACCESS_TOKEN }, signal ? { signal } : {}),
    close: () => client.close(),
  };
}

function connectNode(transport: Transport): TlsClient {
  const client = createClient(TokenService, transport);
  return {
    getToken: (appId) =>
      client.getToken({ appId, kind: TokenKind.ACCESS_TOKEN }, { timeoutMs: 5_000 }),
    watchToken: (appId, signal) =>
      client.watchToken({ appId, kind: TokenKind.ACCESS_TOKEN }, signal ? { signal } : {}),
    close: () => {},
  };
}

function nodeOptions(creds: Creds) {
  return {
    ca: creds.ca,
    ...(creds.client && { cert: creds.client.cert, key: creds.client.key }),
  };
}

const TLS_CLIENTS: readonly TlsClientKind[] = [
  { name: "grpc-js on the grpc port", listener: "grpc", protocol: "grpc", make: grpcJs },
  {
    name: "connect-node gRPC on the grpc port",
    listener: "grpc",
    protocol: "grpc",
    make: (baseUrl, creds) =>
      connectNode(createGrpcTransport({ baseUrl, nodeOptions: nodeOptions(creds) })),
  },
  { name: "grpc-js on the connect port", listener: "connect", protocol: "grpc", make: grpcJs },
  {
    name: "connect-node gRPC on the connect port",
    listener: "connect",
    protocol: "grpc",
    make: (baseUrl, creds) =>
      connectNode(createGrpcTransport({ baseUrl, nodeOptions: nodeOptions(creds) })),
  },
  ...(["1.1", "2"] as const).flatMap((httpVersion): TlsClientKind[] => [
    {
      name: `Connect over HTTP/${httpVersion}`,
      listener: "connect",
      protocol: "connect",
      make: (baseUrl, creds) =>
        connectNode(
          createConnectTransport({ baseUrl, httpVersion, nodeOptions: nodeOptions(creds) }),
        ),
    },
    {
      name: `gRPC-Web over HTTP/${httpVersion}`,
      listener: "connect",
      protocol: "grpc-web",
      make: (baseUrl, creds) =>
        connectNode(
          createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions: nodeOptions(creds) }),
        ),
    },
  ]),
];

/** Calls GetToken once with a fresh client; returns what the handler saw, or throws. */
async function callOnce(
  kind: TlsClientKind,
  s: TlsServers,
  creds: Creds,
  appId: string,
): Promise<CallRecord | undefined> {
  const client = kind.make(s[kind.listener].url, creds);
  try {
    const res = await client.getToken(appId);
    expect(res.token?.value, kind.name).toBe(`token-of-${appId}-v1`);
    return s.calls.find((c) => c.appId === appId);
  } finally {
    client.close();
  }
}

/** Whether a call with these credentials fails (and never reaches the handler). */
async function refused(kind: TlsClientKind, s: TlsServers, creds: Creds, appId: string) {
  try {
    await callOnce(kind, s, creds, appId);
    return false;
  } catch {
    return !s.calls.some((c) => c.appId === appId);
  }
}

/** A raw TLS connection; resolves once the handshake is done. */
function tlsConnect(
  url: string,
  options: { ca: string; alpn: string; client?: IssuedCert },
): Promise<tls.TLSSocket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: hostname,
      port: Number(port),
      ca: options.ca,
      ALPNProtocols: [options.alpn],
      ...(options.client && { cert: options.client.cert, key: options.client.key }),
    });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** The serial number of the certificate a new connection to `url` is shown. */
async function servedSerial(url: string, ca: string, alpn: string): Promise<string> {
  const socket = await tlsConnect(url, { ca, alpn });
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

/** Polls `check` until it resolves true; returns how long that took. */
async function until(check: () => Promise<boolean>, timeoutMs = 3_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await delay(20);
  }
  return Date.now() - started;
}

async function curlJson(url: string, args: string[], body: string) {
  const { stdout } = await run(
    "curl",
    [
      "-sS",
      ...args,
      "-H",
      "Content-Type: application/json",
      "-d",
      body,
      "-w",
      "\n%{http_version} %{http_code}",
      url,
    ],
    { timeout: 10_000 },
  );
  const lines = stdout.split("\n");
  const [httpVersion, status] = (lines.pop() ?? "").split(" ");
  return { httpVersion, status: Number(status), body: JSON.parse(lines.join("\n")) as unknown };
}

let pki: TestPki;
let ca: TestCa;
let otherCa: TestCa;
let serverCert: IssuedCert;
/** Client certificates: CN app-alpha from `ca`, CN intruder from `otherCa`. */
let alpha: IssuedCert;
let intruder: IssuedCert;

beforeAll(async () => {
  pki = await createTestPki();
  [ca, otherCa] = await Promise.all([pki.createCa("Broker Test CA"), pki.createCa("Other CA")]);
  [serverCert, alpha, intruder] = await Promise.all([
    ca.serverCert(),
    ca.clientCert("app-alpha"),
    otherCa.clientCert("intruder"),
  ]);
});

afterAll(async () => {
  await pki?.cleanup();
});

const serverTls = () => ({ certFile: serverCert.certFile, keyFile: serverCert.keyFile });

describe("TLS without client certificates", () => {
  it.each(TLS_CLIENTS)("$name: unary and streaming calls; no identity", async (kind) => {
    const s = await startTlsServers(serverTls());
    expect(s[kind.listener].url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // A client certificate the server did not ask for gives no identity.
    for (const client of [undefined, alpha]) {
      const appId = `demo-${client ? "with" : "without"}-cert`;
      const call = await callOnce(kind, s, { ca: ca.cert, client }, appId);
      expect(call?.protocol).toBe(kind.protocol);
      expect(call?.peer?.address).toBe("127.0.0.1");
      expect(call?.peer?.tlsIdentity).toBeUndefined();
    }
    const client = kind.make(s[kind.listener].url, { ca: ca.cert });
    try {
      const versions: bigint[] = [];
      for await (const res of client.watchToken("finite")) versions.push(res.token?.version ?? 0n);
      expect(versions).toEqual([1n, 2n, 3n]);
    } finally {
      client.close();
    }
  });

  it("refuses clients that do not trust the CA, and plaintext clients", async () => {
    const s = await startTlsServers(serverTls());
    for (const kind of TLS_CLIENTS.filter((k) => k.name.startsWith("grpc-js"))) {
      expect(await refused(kind, s, { ca: otherCa.cert }, `untrusted-${kind.listener}`)).toBe(true);
    }
    const plain = createClient(
      TokenService,
      createConnectTransport({
        baseUrl: s.connect.url.replace("https:", "http:"),
        httpVersion: "1.1",
      }),
    );
    await expect(plain.getToken({ appId: "plaintext" }, { timeoutMs: 2_000 })).rejects.toThrow();
    expect(s.calls).toEqual([]);
  });

  it.each([
    { flag: "--http1.1", version: "1.1" },
    { flag: "--http2", version: "2" },
  ])("curl $flag with JSON (ALPN picks HTTP/$version)", async ({ flag, version }) => {
    const s = await startTlsServers(serverTls());
    const url = `${s.connect.url}/tokenbroker.v1.TokenService/GetToken`;
    const ok = await curlJson(url, [flag, "--cacert", ca.certFile], '{"appId":"curl"}');
    expect(ok).toMatchObject({
      httpVersion: version,
      status: 200,
      body: { token: { appId: "curl", value: "token-of-curl-v1" } },
    });
    const missing = await curlJson(url, [flag, "--cacert", ca.certFile], '{"appId":"missing"}');
    expect(missing).toEqual({
      httpVersion: version,
      status: 404,
      body: { code: "not_found", message: 'app "missing" is not configured' },
    });
  });

  it("fails to start on a key that does not match the certificate, naming the files", async () => {
    const { logger } = captureLogs();
    const tlsOptions = { certFile: serverCert.certFile, keyFile: alpha.keyFile };
    const common = { host: "127.0.0.1", port: 0, services: [], logger, tls: tlsOptions };
    await expect(startGrpcServer(common)).rejects.toThrow(alpha.keyFile);
    await expect(startConnectServer(common)).rejects.toThrow(alpha.keyFile);
    await expect(
      startConnectServer({ ...common, tls: { ...serverTls(), requireClientCert: true } }),
    ).rejects.toThrow("requireClientCert needs tls.clientCaFile");
  });
});

describe("close() over TLS", () => {
  it("does not wait for stalled handshakes or idle connections", async () => {
    const s = await startTlsServers(serverTls());
    const { port } = new URL(s.connect.url);
    // Connected, but never sends a ClientHello.
    const stalled = net.connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => stalled.once("connect", resolve));
    stalled.on("error", () => {});
    const idleH1 = await tlsConnect(s.connect.url, { ca: ca.cert, alpn: "http/1.1" });
    expect(await http1Call(idleH1, "idle")).toContain("token-of-idle-v1");
    const h2 = connectNode(
      createConnectTransport({
        baseUrl: s.connect.url,
        httpVersion: "2",
        nodeOptions: { ca: ca.cert },
      }),
    );
    await h2.getToken("h2");
    const closed = (socket: net.Socket) => new Promise((resolve) => socket.once("close", resolve));
    const gone = Promise.all([closed(stalled), closed(idleH1)]);
    const started = Date.now();
    await s.connect.close({ graceMs: 5_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    await gone;
  });
});

describe("mutual TLS", () => {
  it.each(TLS_CLIENTS)(
    "required, $name: the handler sees the CN; no certificate or another CA's is refused",
    async (kind) => {
      const s = await startTlsServers({
        ...serverTls(),
        clientCaFile: ca.certFile,
        requireClientCert: true,
      });
      const call = await callOnce(kind, s, { ca: ca.cert, client: alpha }, "with-cert");
      expect(call?.peer?.tlsIdentity).toBe("app-alpha");
      expect(call?.peer?.address).toBe("127.0.0.1");
      expect(await refused(kind, s, { ca: ca.cert }, "without-cert")).toBe(true);
      expect(await refused(kind, s, { ca: ca.cert, client: intruder }, "other-ca")).toBe(true);
    },
  );

  it.each(TLS_CLIENTS.filter((k) => k.name.startsWith("grpc-js") || k.name.endsWith("HTTP/2")))(
    "optional, $name: identity only for a certificate that verifies",
    async (kind) => {
      const s = await startTlsServers({ ...serverTls(), clientCaFile: ca.certFile });
      const verified = await callOnce(kind, s, { ca: ca.cert, client: alpha }, "verified");
      expect(verified?.peer?.tlsIdentity).toBe("app-alpha");
      const none = await callOnce(kind, s, { ca: ca.cert }, "no-cert");
      expect(none?.peer).toBeDefined();
      expect(none?.peer?.tlsIdentity).toBeUndefined();
      const foreign = await callOnce(kind, s, { ca: ca.cert, client: intruder }, "foreign");
      expect(foreign?.peer?.tlsIdentity).toBeUndefined();
    },
  );

  it("curl with and without a client certificate (required)", async () => {
    const s = await startTlsServers({
      ...serverTls(),
      clientCaFile: ca.certFile,
      requireClientCert: true,
    });
    const url = `${s.connect.url}/tokenbroker.v1.TokenService/GetToken`;
    for (const flag of ["--http1.1", "--http2"]) {
      const appId = `curl${flag}`;
      const args = [
        flag,
        "--cacert",
        ca.certFile,
        "--cert",
        alpha.certFile,
        "--key",
        alpha.keyFile,
      ];
      expect((await curlJson(url, args, `{"appId":"${appId}"}`)).status).toBe(200);
      expect(s.calls.find((c) => c.appId === appId)?.peer?.tlsIdentity).toBe("app-alpha");
      await expect(
        curlJson(url, [flag, "--cacert", ca.certFile], '{"appId":"x"}'),
      ).rejects.toThrow();
    }
    expect(s.calls.some((c) => c.appId === "x")).toBe(false);
  });
});

describe("certificate reload without restart", () => {
  const INTERVAL_MS = 200;

  /** Server cert, key and client CA files of our own, to replace during the test. */
  async function ownFiles() {
    const dir = pki.dir;
    const tag = Math.random().toString(36).slice(2, 8);
    const files = {
      certFile: path.join(dir, `live-${tag}.pem`),
      keyFile: path.join(dir, `live-${tag}.key`),
      clientCaFile: path.join(dir, `live-${tag}-ca.pem`),
    };
    await installCert(serverCert, files);
    await copyFile(ca.certFile, files.clientCaFile);
    return files;
  }

  it("new connections get the new certificate within the interval; open ones carry on", async () => {
    const files = await ownFiles();
    const s = await startTlsServers({ ...files, reloadIntervalMs: INTERVAL_MS });
    const probes = [
      { url: s.grpc.url, alpn: "h2" },
      { url: s.connect.url, alpn: "h2" },
      { url: s.connect.url, alpn: "http/1.1" },
    ];
    for (const p of probes) {
      expect(await servedSerial(p.url, ca.cert, p.alpn)).toBe(serverCert.serialNumber);
    }
    // Open before the reload: an HTTP/1.1 connection, a client per listener
    // with an open stream, and their connections' ports as the handler saw them.
    const h1 = await tlsConnect(s.connect.url, { ca: ca.cert, alpn: "http/1.1" });
    const clients = {
      grpc: grpcJs(s.grpc.url, { ca: ca.cert }),
      connect: connectNode(
        createConnectTransport({
          baseUrl: s.connect.url,
          httpVersion: "2",
          nodeOptions: { ca: ca.cert },
        }),
      ),
    };
    const streams = new AbortController();
    try {
      const before: Record<string, number | undefined> = {};
      for (const [listener, client] of Object.entries(clients)) {
        await client.getToken(`before-${listener}`);
        before[listener] = s.calls.at(-1)?.peer?.port;
        const it = client.watchToken(`open-${listener}`, streams.signal)[Symbol.asyncIterator]();
        for (const v of [1n, 2n, 3n]) expect((await it.next()).value?.token?.version).toBe(v);
      }

      const renewed = await ca.serverCert("token-broker-renewed");
      await installCert(renewed, files);
      for (const p of probes) {
        const took = await until(
          async () => (await servedSerial(p.url, ca.cert, p.alpn)) === renewed.serialNumber,
        );
        expect(took, `${p.url} ${p.alpn}`).toBeLessThan(INTERVAL_MS * 4);
      }

      // The connections opened before are still up and still serve calls.
      expect(h1.destroyed).toBe(false);
      expect(h1.getPeerCertificate().serialNumber).toBe(serverCert.serialNumber);
      expect(await http1Call(h1, "old-h1")).toContain("token-of-old-h1-v1");
      for (const [listener, client] of Object.entries(clients)) {
        await client.getToken(`after-${listener}`);
        expect(s.calls.at(-1)?.peer?.port, listener).toBe(before[listener]);
        const stream = s.calls.find((c) => c.appId === `open-${listener}`);
        expect(stream?.signal.aborted, listener).toBe(false);
      }
      expect(s.logs.filter((l) => l.msg === "reloaded the TLS certificate")).toHaveLength(2);
    } finally {
      streams.abort();
      h1.destroy();
      clients.grpc.close();
    }
  });

  it("a bad new file is logged once and the previous certificate kept", async () => {
    const files = await ownFiles();
    const s = await startTlsServers({ ...files, reloadIntervalMs: INTERVAL_MS });
    await replaceFile(files.certFile, "-----BEGIN CERTIFICATE-----\ngarbage\n");
    await delay(INTERVAL_MS * 4);
    for (const kind of TLS_CLIENTS.filter((k) => k.name.startsWith("grpc-js"))) {
      const url = s[kind.listener].url;
      expect(await servedSerial(url, ca.cert, "h2")).toBe(serverCert.serialNumber);
      expect(await callOnce(kind, s, { ca: ca.cert }, `still-${kind.listener}`)).toBeDefined();
    }
    const errors = s.logs.filter((l) => l.level === 50);
    // One line per listener, not one per poll.
    expect(errors.map((l) => l.component).sort()).toEqual(["connect-server", "grpc-server"]);
    expect(String(errors[0]?.msg)).toContain("keeping the previous one");

    const fixed = await ca.serverCert("token-broker-fixed");
    await installCert(fixed, files);
    for (const url of [s.grpc.url, s.connect.url]) {
      await until(async () => (await servedSerial(url, ca.cert, "h2")) === fixed.serialNumber);
    }
  });

  it("a replaced client CA applies to new connections", async () => {
    const files = await ownFiles();
    const s = await startTlsServers({ ...files, reloadIntervalMs: INTERVAL_MS });
    const kinds = TLS_CLIENTS.filter((k) => k.name.startsWith("grpc-js"));
    for (const kind of kinds) {
      const call = await callOnce(
        kind,
        s,
        { ca: ca.cert, client: intruder },
        `pre-${kind.listener}`,
      );
      expect(call?.peer?.tlsIdentity).toBeUndefined();
    }
    await replaceFile(files.clientCaFile, otherCa.cert);
    for (const kind of kinds) {
      let n = 0;
      await until(async () => {
        const call = await callOnce(
          kind,
          s,
          { ca: ca.cert, client: intruder },
          `post-${kind.listener}-${++n}`,
        );
        return call?.peer?.tlsIdentity === "intruder";
      });
      const old = await callOnce(
        kind,
        s,
        { ca: ca.cert, client: alpha },
        `old-ca-${kind.listener}`,
      );
      expect(old?.peer?.tlsIdentity).toBeUndefined();
    }
  });
});

/** One Connect JSON call over an open HTTP/1.1 connection; resolves with the raw response. */
function http1Call(socket: tls.TLSSocket, appId: string): Promise<string> {
  const body = JSON.stringify({ appId });
  return new Promise((resolve, reject) => {
    let response = "";
    const onData = (chunk: Buffer) => {
      response += chunk.toString();
      if (response.includes("}}")) {
        socket.off("data", onData);
        resolve(response);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(
      `POST /tokenbroker.v1.TokenService/GetToken HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
}
