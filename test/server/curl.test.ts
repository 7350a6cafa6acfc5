import { execFile } from "node:child_process";
import * as net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { type Servers, startServers } from "./harness.js";

const run = promisify(execFile);

/** Connect unary over curl: prints the body, then the HTTP version and status on the last line. */
async function curlJson(url: string, httpFlag: string, body: string) {
  const { stdout } = await run(
    "curl",
    [
      "-sS",
      httpFlag,
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

let servers: Servers | undefined;
afterEach(async () => {
  await servers?.close();
  servers = undefined;
});

describe("curl with JSON on the Connect port", () => {
  it.each([
    { flag: "--http1.1", version: "1.1" },
    { flag: "--http2-prior-knowledge", version: "2" },
  ])("$flag: a call and an error", async ({ flag, version }) => {
    servers = await startServers();
    const url = `${servers.connect.url}/tokenbroker.v1.TokenService/GetToken`;
    const ok = await curlJson(url, flag, '{"appId":"demo","kind":"TOKEN_KIND_ACCESS_TOKEN"}');
    expect(ok).toMatchObject({
      httpVersion: version,
      status: 200,
      body: {
        token: {
          appId: "demo",
          kind: "TOKEN_KIND_ACCESS_TOKEN",
          value: "token-of-demo-v1",
          version: "1",
        },
      },
    });
    const missing = await curlJson(url, flag, '{"appId":"missing"}');
    expect(missing).toEqual({
      httpVersion: version,
      status: 404,
      body: { code: "not_found", message: 'app "missing" is not configured' },
    });
    const boom = await curlJson(url, flag, '{"appId":"boom"}');
    expect(boom).toEqual({
      httpVersion: version,
      status: 500,
      body: { code: "internal", message: "internal error" },
    });
  });
});

describe("CORS", () => {
  const preflight = (url: string, origin: string) =>
    fetch(url, {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,connect-protocol-version",
      },
    });
  const call = (url: string, origin: string) =>
    fetch(url, {
      method: "POST",
      headers: { Origin: origin, "Content-Type": "application/json" },
      body: '{"appId":"demo"}',
    });

  it("answers preflights and marks responses for allowed origins only", async () => {
    servers = await startServers({ corsAllowedOrigins: ["https://console.example"] });
    const url = `${servers.connect.url}/tokenbroker.v1.TokenService/GetToken`;

    const allowed = await preflight(url, "https://console.example");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://console.example");
    expect(allowed.headers.get("access-control-allow-methods")).toContain("POST");
    expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
      "connect-protocol-version",
    );

    const res = await call(url, "https://console.example");
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://console.example");
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain(
      "grpc-status",
    );
    expect(res.headers.get("vary")).toBe("Origin");

    const refused = await preflight(url, "https://evil.example");
    expect(refused.status).toBe(403);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    const other = await call(url, "https://evil.example");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("allows no origin by default", async () => {
    servers = await startServers();
    const url = `${servers.connect.url}/tokenbroker.v1.TokenService/GetToken`;
    const res = await call(url, "https://console.example");
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(
      (await preflight(url, "https://console.example")).headers.get("access-control-allow-origin"),
    ).toBeNull();
  });
});

describe("robustness of the Connect port", () => {
  it("survives connections reset before or after the protocol is known", async () => {
    servers = await startServers();
    const { port } = new URL(servers.connect.url);
    for (const bytes of ["", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "POST /x HTTP/1.1\r\n"]) {
      const socket = net.connect(Number(port), "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      if (bytes) socket.write(bytes);
      await delay(20);
      socket.resetAndDestroy();
      await delay(20);
    }
    const res = await curlJson(
      `${servers.connect.url}/tokenbroker.v1.TokenService/GetToken`,
      "--http1.1",
      '{"appId":"after"}',
    );
    expect(res.status).toBe(200);
  });
});
