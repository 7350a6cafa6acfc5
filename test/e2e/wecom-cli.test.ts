import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * A WeCom app through the operator CLI and the CLI's own emulator and demo
 * (issue 12): `demo` serves a WeCom app next to its official account, and
 * get, watch, invalidate, status and clear-quota work on it with
 * --kind wecom_agent_ticket; `emulator --wecom-app` serves WeCom corps for
 * `serve` with a `type: wecom` app in its config file.
 */

const run = promisify(execFile);
const BIN = "bin/token-broker.js";

type Line = Record<string, unknown>;

/** Spawns the CLI; `line` resolves with its first JSON log line whose msg matches. */
function spawnUntil(args: string[], msg: string) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: Line[] = [];
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const line = new Promise<Line>((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`${args[0]} exited early with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) => {
      const parsed = JSON.parse(l) as Line;
      lines.push(parsed);
      if (parsed.msg === msg) resolve(parsed);
    });
  });
  return { child, exit, line, lines };
}

/** The first line `watch` prints. */
function firstWatched(args: string[]): Promise<Line> {
  const watcher: ChildProcess = spawn(process.execPath, [BIN, "watch", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise<Line>((resolve, reject) => {
    createInterface({ input: watcher.stdout as NodeJS.ReadableStream }).once("line", (l) => {
      watcher.kill("SIGINT");
      resolve(JSON.parse(l) as Line);
    });
    watcher.once("exit", (code) => reject(new Error(`watch exited with ${code}`)));
  });
}

const failed = (e: { code: number; stdout: string; stderr: string }) => e;

// Each command is a fresh node process that compiles the CLI with tsx: seconds each on a busy machine.
describe("the demo's WeCom app through the CLI", { timeout: 120_000 }, () => {
  let demo: ReturnType<typeof spawnUntil>;
  let grpc: string;
  let emulator: string;
  beforeAll(async () => {
    demo = spawnUntil(
      ["demo", "--grpc", "127.0.0.1:0", "--connect", "127.0.0.1:0"],
      "token broker serving",
    );
    grpc = String((await demo.line).grpc).replace("http://", "");
    emulator = String(demo.lines.find((l) => typeof l.emulator === "string")?.emulator);
  }, 60_000);
  afterAll(async () => {
    demo.child.kill("SIGTERM");
    await demo.exit;
  });
  const cli = (args: string[]) =>
    run(process.execPath, [BIN, ...args, "--addr", grpc]).catch(failed);

  it("get, watch and invalidate the app's tokens and tickets", async () => {
    const [agent, corp, token] = await Promise.all(
      ["wecom_agent_ticket", "jsapi_ticket", "access_token"].map(async (kind) =>
        JSON.parse((await cli(["get", "--app", "demo-wecom", "--kind", kind, "--reveal"])).stdout),
      ),
    );
    expect(agent).toMatchObject({ app: "demo-wecom", kind: "wecom_agent_ticket", version: "1" });
    expect(corp).toMatchObject({ app: "demo-wecom", kind: "jsapi_ticket" });
    expect(agent.value).not.toBe(corp.value);
    expect(token).toMatchObject({ app: "demo-wecom", kind: "access_token", version: "1" });

    const watched = await firstWatched([
      "--app",
      "demo-wecom",
      "--kind",
      "wecom_agent_ticket",
      "--addr",
      grpc,
    ]);
    expect(watched).toMatchObject({
      app: "demo-wecom",
      kind: "wecom_agent_ticket",
      fingerprint: agent.fingerprint,
    });

    // WeCom invalidated the token early; the report (40014) makes the broker fetch a new one.
    const killed = await fetch(`${emulator}/_emulator/wecom/tokens/invalidate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ access_token: token.value }),
    });
    expect(killed.status).toBe(200);
    const inv = await cli([
      "invalidate",
      "--app",
      "demo-wecom",
      "--value",
      token.value,
      "--errcode",
      "40014",
    ]);
    expect(JSON.parse(inv.stdout)).toMatchObject({
      app: "demo-wecom",
      version: "2",
      outcome: "REFRESHED",
    });
    expect(JSON.stringify(demo.lines)).not.toContain(token.value);
  });

  it("status shows the app as a WeCom app with its credentials, the agent ticket included", async () => {
    await cli(["get", "--app", "demo-wecom", "--kind", "wecom_agent_ticket"]);
    const status = await cli(["status", "--app", "demo-wecom"]);
    expect(status.stdout).toMatch(
      /Apps[\s\S]*demo-wecom\s+wecom\s+access_token,jsapi_ticket,wecom_agent_ticket/,
    );
    expect(status.stdout).toMatch(/Credentials[\s\S]*demo-wecom\s+wecom_agent_ticket\s+1\s/);
    expect(status.stdout).not.toMatch(/\bdemo\s+official_account/); // narrowed to the one app
  });

  it("clear-quota refuses a WeCom app without sending its secret to WeChat, exit 1", async () => {
    const err = await cli(["clear-quota", "--app", "demo-wecom", "--reason", "drill"]);
    expect(err).toMatchObject({ code: 1 });
    expect(err.stderr).toMatch(/FailedPrecondition: app 'demo-wecom' is a WeCom app/);
    const counters = (await (await fetch(`${emulator}/_emulator/counters`)).json()) as object;
    expect(Object.keys(counters)).not.toContain("/cgi-bin/clear_quota/v2");
  });
});

describe("emulator --wecom-app behind serve with a type: wecom app", { timeout: 120_000 }, () => {
  it("serves the corp's app to a broker configured from a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "broker-wecom-serve-"));
    const emulator = spawnUntil(
      [
        "emulator",
        "--port",
        "0",
        "--wecom-app",
        "ww00000000000cli01:1000005:cli-wecom-secret-0001",
        "--wecom-app",
        "ww00000000000cli01::cli-contacts-secret-0001",
      ],
      "emulator listening",
    );
    try {
      const upstream = String((await emulator.line).url);
      const apps = (await (await fetch(`${upstream}/_emulator/wecom/corps`)).json()) as Line[];
      expect(apps.map((a) => [a.corpid, a.app, a.agentid])).toEqual([
        ["ww00000000000cli01", "1000005", 1000005],
        ["ww00000000000cli01", "corp", undefined],
      ]);
      const file = join(dir, "broker.yaml");
      writeFileSync(
        file,
        [
          "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
          `upstream: { baseUrl: "${upstream}", wecomBaseUrl: "${upstream}" }`,
          "apps:",
          "  - id: hr",
          "    type: wecom",
          "    corpid: ww00000000000cli01",
          '    agentid: "1000005"',
          `    secret: { file: ${join(dir, "hr.secret")} }`,
        ].join("\n"),
      );
      writeFileSync(join(dir, "hr.secret"), "cli-wecom-secret-0001\n");
      const broker = spawnUntil(["serve", "--config", file], "token broker serving");
      const grpc = String((await broker.line).grpc).replace("http://", "");
      const got = await run(process.execPath, [
        BIN,
        "get",
        "--addr",
        grpc,
        "--app",
        "hr",
        "--kind",
        "wecom_agent_ticket",
      ]);
      expect(JSON.parse(got.stdout)).toMatchObject({
        app: "hr",
        kind: "wecom_agent_ticket",
        version: "1",
      });
      const counters = (await (await fetch(`${upstream}/_emulator/counters`)).json()) as Record<
        string,
        Record<string, { successes: number }>
      >;
      expect(counters["/cgi-bin/gettoken"]?.ww00000000000cli01?.successes).toBe(1);
      expect(counters["/cgi-bin/ticket/get"]?.ww00000000000cli01?.successes).toBe(1);
      broker.child.kill("SIGTERM");
      expect(await broker.exit).toBe(0);
    } finally {
      emulator.child.kill("SIGTERM");
      await emulator.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a malformed --wecom-app without echoing its secret, exit 2", async () => {
    const err = await run(process.execPath, [
      BIN,
      "emulator",
      "--port",
      "0",
      "--wecom-app",
      "ww00000000000cli01:agent:some-secret-value-01",
    ]).catch(failed);
    expect(err).toMatchObject({ code: 2 });
    expect(err.stderr).toContain("--wecom-app expects CORPID:AGENTID:SECRET");
    expect(err.stderr).not.toContain("some-secret-value-01");
  });
});
