import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createTestPki, type IssuedCert, type TestCa, type TestPki } from "../helpers/certs.js";

const run = promisify(execFile);
const BIN = "bin/token-broker.js";

interface Demo {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  grpc: string;
  connect: string;
  exit: Promise<number | null>;
}

/** Starts `token-broker demo` on free ports and waits for its "serving" log line. */
async function startDemo(): Promise<Demo> {
  const child = spawn(
    process.execPath,
    [BIN, "demo", "--grpc", "127.0.0.1:0", "--connect", "127.0.0.1:0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const lines: Record<string, unknown>[] = [];
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const serving = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`demo exited early with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push(parsed);
      if (parsed.msg === "token broker serving") resolve(parsed);
    });
  });
  const s = await serving;
  return {
    child,
    lines,
    exit,
    grpc: String(s.grpc).replace("http://", ""),
    connect: String(s.connect),
  };
}

describe("token-broker CLI", () => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo();
  }, 30_000);
  afterAll(() => {
    demo.child.kill("SIGKILL");
  });

  it("demo labels every log line and answers get, invalidate and watch", async () => {
    const get = await run(process.execPath, [
      BIN,
      "get",
      "--addr",
      demo.grpc,
      "--app",
      "demo",
      "--reveal",
    ]);
    const token = JSON.parse(get.stdout) as {
      value: string;
      version: string;
      fingerprint: string;
      expiresIn: number;
    };
    expect(token.version).toBe("1");
    expect(token.value.length).toBeGreaterThan(64);
    expect(token.expiresIn).toBeGreaterThan(100);

    const quiet = JSON.parse(
      (await run(process.execPath, [BIN, "get", "--addr", demo.grpc, "--app", "demo"])).stdout,
    );
    expect(quiet.value).toBeUndefined();
    expect(quiet.fingerprint).toBe(token.fingerprint);

    const inv = await run(process.execPath, [
      BIN,
      "invalidate",
      "--addr",
      demo.grpc,
      "--app",
      "demo",
      "--value",
      token.value,
      "--errcode",
      "40001",
    ]);
    expect(JSON.parse(inv.stdout)).toMatchObject({
      version: "2",
      refreshed: true,
      outcome: "REFRESHED",
    });

    const watcher = spawn(process.execPath, [BIN, "watch", "--addr", demo.grpc, "--app", "demo"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const first = await new Promise<string>((resolve) =>
      createInterface({ input: watcher.stdout }).once("line", resolve),
    );
    watcher.kill("SIGINT");
    expect(JSON.parse(first)).toMatchObject({ app: "demo", kind: "access_token", version: "2" });

    for (const line of demo.lines) expect(line.mode).toBe("demo");
    const allLogs = JSON.stringify(demo.lines);
    expect(allLogs).not.toContain(token.value);
  });

  it("get reports a broker error as the status name and message, exit 1", async () => {
    const err = await run(process.execPath, [
      BIN,
      "get",
      "--addr",
      demo.grpc,
      "--app",
      "nope",
    ]).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toMatch(/NotFound: app 'nope' is not configured/);
  });

  it("demo drains and exits 0 on SIGTERM", async () => {
    demo.child.kill("SIGTERM");
    expect(await demo.exit).toBe(0);
    expect(demo.lines.map((l) => l.msg)).toContain("stopped");
  });
});

/** Spawns the CLI and resolves with its first JSON log line whose msg matches. */
function spawnUntil(args: string[], msg: string, env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const line = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`${args[0]} exited early with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) => {
      const parsed = JSON.parse(l) as Record<string, unknown>;
      if (parsed.msg === msg) resolve(parsed);
    });
  });
  return { child, exit, line };
}

describe("token-broker serve", () => {
  it("serves the apps of a config file from the upstream it names, and stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "broker-serve-"));
    const emulator = spawnUntil(
      ["emulator", "--port", "0", "--app", "wx00000000000000s1:serve-secret-123"],
      "emulator listening",
    );
    try {
      const upstream = String((await emulator.line).url);
      const file = join(dir, "broker.yaml");
      writeFileSync(
        file,
        [
          "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
          `upstream: { baseUrl: "${upstream}" }`,
          "apps:",
          "  - id: shop",
          "    appid: wx00000000000000s1",
          `    secret: { file: ${join(dir, "shop.secret")} }`,
          "    tokenMode: stable",
        ].join("\n"),
      );
      writeFileSync(join(dir, "shop.secret"), "serve-secret-123\n");
      const broker = spawnUntil(["serve", "--config", file], "token broker serving");
      const grpc = String((await broker.line).grpc).replace("http://", "");
      const got = JSON.parse(
        (await run(process.execPath, [BIN, "get", "--addr", grpc, "--app", "shop"])).stdout,
      );
      expect(got).toMatchObject({ app: "shop", kind: "access_token", version: "1" });
      const counters = (await (await fetch(`${upstream}/_emulator/counters`)).json()) as Record<
        string,
        unknown
      >;
      expect(Object.keys(counters)).toContain("/cgi-bin/stable_token");
      expect(Object.keys(counters)).not.toContain("/cgi-bin/token");
      broker.child.kill("SIGTERM");
      expect(await broker.exit).toBe(0);
    } finally {
      emulator.child.kill("SIGTERM");
      await emulator.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a bad config, naming the key, with exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "broker-cli-"));
    try {
      const file = join(dir, "broker.yaml");
      writeFileSync(
        file,
        "apps:\n  - id: shop\n    appid: wx1\n    secret: { env: SHOP_SECRET_NOT_SET }\n",
      );
      const err = await run(process.execPath, [BIN, "serve", "--config", file]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect(err).toMatchObject({ code: 2 });
      expect((err as { stderr: string }).stderr).toContain(
        "invalid configuration: config key 'apps[0].secret.env': environment variable SHOP_SECRET_NOT_SET is not set or empty",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints usage on --help, exit 0", async () => {
    const { stdout } = await run(process.execPath, [BIN, "--help"]);
    expect(stdout).toMatch(
      /^token-broker: the central WeChat token server[\s\S]*token-broker demo/,
    );
  });

  it("hash-key prints the SHA-256 of a key read from stdin", async () => {
    const child = spawn(process.execPath, [BIN, "hash-key"], { stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.end("my-api-key\n");
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((r) => child.on("exit", r));
    expect(out.trim()).toBe(createHash("sha256").update("my-api-key").digest("hex"));
  });

  it("prints usage for an unknown command, exit 2", async () => {
    const err = await run(process.execPath, [BIN, "frobnicate"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toMatch(/unknown command 'frobnicate'[\s\S]*Usage:/);
  });
});

// Each command is a fresh node process that compiles the CLI with tsx: seconds each on a busy machine.
describe("client commands with an API key, TLS and mTLS (issue 9 item 11)", {
  timeout: 180_000,
}, () => {
  const LEAKY = {
    id: "leaky",
    appid: "wx00000000000000l1",
    secret: "leaky-secret-cli-0000",
    tokenMode: "stable" as const,
  };
  const OPS_KEY = "ops-key-cli-7d3e9a1b5c";
  let pki: TestPki;
  let ca: TestCa;
  let opsCert: IssuedCert;
  let h: BrokerHarness;
  let dir: string;
  let keyFile: string;
  beforeAll(async () => {
    pki = await createTestPki();
    ca = await pki.createCa("cli-test-ca");
    const server = await ca.serverCert();
    opsCert = await ca.clientCert("ops.internal");
    h = await startBrokerHarness([LEAKY], 500, {
      config: {
        security: {
          tls: { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: ca.certFile },
          clients: [
            {
              id: "ops-by-key",
              apiKeySha256: hashApiKey(OPS_KEY),
              apps: ["*"],
              permissions: ["get", "watch", "invalidate", "admin"],
            },
            {
              id: "ops-by-cert",
              tlsIdentity: "ops.internal",
              apps: ["*"],
              permissions: ["get", "admin"],
            },
          ],
        },
      },
    });
    dir = mkdtempSync(join(tmpdir(), "broker-cli-keys-"));
    keyFile = join(dir, "ops.key");
    writeFileSync(keyFile, `${OPS_KEY}\n`);
  }, 30_000);
  afterAll(async () => {
    await h.close();
    await pki.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const addr = () => `127.0.0.1:${h.broker.grpc.port}`;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [BIN, ...args, "--addr", addr()], {
      env: { ...process.env, TOKEN_BROKER_API_KEY: "", ...env },
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
  const tlsKey = () => ["--api-key-file", keyFile, "--ca", ca.certFile];

  it("get, invalidate, status, force-refresh and clear-quota with --api-key-file over TLS", async () => {
    const got = await cli(["get", "--app", "leaky", "--reveal", ...tlsKey()]);
    const token = JSON.parse(got.stdout) as { value: string; version: string };
    expect(token.version).toBe("1");

    const inv = await cli([
      "invalidate",
      "--app",
      "leaky",
      "--value",
      token.value,
      "--errcode",
      "40001",
      ...tlsKey(),
    ]);
    expect(JSON.parse(inv.stdout)).toMatchObject({ app: "leaky" });

    const status = await cli(["status", "--app", "leaky", ...tlsKey()]);
    expect(status.stdout).toMatch(/Credentials[\s\S]*leaky\s+access_token/);

    const forced = await cli([
      "force-refresh",
      "--app",
      "leaky",
      "--reason",
      "INC-9 drill",
      ...tlsKey(),
    ]);
    expect(JSON.parse(forced.stdout)).toMatchObject({ app: "leaky" });

    const cleared = await cli([
      "clear-quota",
      "--app",
      "leaky",
      "--reason",
      "INC-9 drill",
      ...tlsKey(),
    ]);
    expect(JSON.parse(cleared.stdout)).toEqual({ app: "leaky", quotaCleared: true });
  });

  it("watch with the key from TOKEN_BROKER_API_KEY and --tls --ca", async () => {
    const watcher = spawn(
      process.execPath,
      [BIN, "watch", "--app", "leaky", "--tls", "--ca", ca.certFile, "--addr", addr()],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TOKEN_BROKER_API_KEY: OPS_KEY } },
    );
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: watcher.stdout }).once("line", resolve);
      watcher.once("exit", (code) => reject(new Error(`watch exited with ${code}`)));
    });
    watcher.kill("SIGINT");
    expect(JSON.parse(first)).toMatchObject({ app: "leaky", kind: "access_token" });
  });

  it("status and get with a client certificate (mTLS), no key", async () => {
    const mtls = ["--ca", ca.certFile, "--cert", opsCert.certFile, "--key", opsCert.keyFile];
    const [status, got] = await Promise.all([
      cli(["status", ...mtls]),
      cli(["get", "--app", "leaky", ...mtls]),
    ]);
    expect(status.stdout).toMatch(/Credentials/);
    expect(JSON.parse(got.stdout)).toMatchObject({ app: "leaky" });
  });

  it("without a key or certificate the broker says UNAUTHENTICATED, exit 1", async () => {
    const err = await cli(["get", "--app", "leaky", "--ca", ca.certFile]);
    expect(err).toMatchObject({ code: 1 });
    expect(err.stderr).toMatch(/Unauthenticated: this broker requires authentication/);
  });

  it("refuses unreadable files, a lone --cert and an --api-key flag with clear errors, exit 2", async () => {
    const missing = join(dir, "nope.key");
    const [noFile, noCa, lone, flag] = await Promise.all([
      cli(["get", "--app", "leaky", "--api-key-file", missing]),
      cli(["status", "--ca", missing]),
      cli(["get", "--app", "leaky", "--cert", opsCert.certFile]),
      cli(["get", "--app", "leaky", "--api-key", OPS_KEY]),
    ]);
    expect(noFile).toMatchObject({ code: 2 });
    expect(noFile.stderr).toContain(`cannot read --api-key-file ${missing}: ENOENT`);
    expect(noCa.stderr).toContain(`cannot read --ca ${missing}: ENOENT`);
    expect(lone).toMatchObject({ code: 2 });
    expect(lone.stderr).toMatch(/--cert and --key go together/);
    expect(flag).toMatchObject({ code: 2 });
    expect(flag.stderr).toMatch(
      /there is no --api-key flag[\s\S]*--api-key-file FILE or TOKEN_BROKER_API_KEY/,
    );
    expect(flag.stderr).not.toContain(OPS_KEY);
  });
});
