import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { freePort, killOnExit } from "../helpers/redis-server.js";

/**
 * `token-broker watch` runs on the client library: it prints the current
 * version, then each new one (with when the broker replaces it and until when
 * the replaced one works), keeps following across a broker restart, and fails
 * only when the broker refuses the request outright.
 */

const BIN = "bin/token-broker.js";
const SHOP = { id: "shop", appid: "wx00000000000000w1", secret: "shop-secret-cli-watch0" };

const running: EmulatedBroker[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await Promise.all(running.splice(0).map((b) => b.close()));
});

async function broker(port: number): Promise<EmulatedBroker> {
  const b = await startEmulatedBroker(
    { apps: [SHOP], config: { listen: { grpc: `127.0.0.1:${port}`, connect: "127.0.0.1:0" } } },
    { logger: silentLogger(), audit: silentLogger() },
  );
  running.push(b);
  return b;
}

function watch(args: string[]) {
  const child = spawn(process.execPath, [BIN, "watch", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) =>
    lines.push(JSON.parse(l) as Record<string, unknown>),
  );
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, lines, exit, stderr: () => stderr };
}

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Each command is a fresh node process that compiles the CLI with tsx: seconds on a busy machine.
describe("token-broker watch", { timeout: 90_000 }, () => {
  it("prints each version with refreshAfter and previousValidUntil, and follows the broker across a restart", async () => {
    const port = await freePort();
    const first = await broker(port);
    const w = watch(["--app", SHOP.id, "--addr", `127.0.0.1:${port}`]);
    await until(() => w.lines.length === 1, "the first line");
    expect(w.lines[0]).toMatchObject({ app: "shop", kind: "access_token", version: "1" });
    expect(Date.parse(String(w.lines[0]?.refreshAfter))).toBeLessThan(
      Date.parse(String(w.lines[0]?.expiresAt)),
    );
    expect(w.lines[0]?.value).toBeUndefined();

    const tokens = createGrpcJsClient(TokenService, `127.0.0.1:${port}`);
    const current = await tokens.getToken({ appId: SHOP.id, kind: TokenKind.ACCESS_TOKEN });
    await tokens.invalidateToken({
      appId: SHOP.id,
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: current.token?.value ?? "",
      errcode: 40001,
    });
    tokens.close();
    await until(() => w.lines.length === 2, "the second version");
    expect(w.lines[1]).toMatchObject({ version: "2" });
    expect(Date.parse(String(w.lines[1]?.previousValidUntil))).toBeGreaterThan(Date.now());

    // The broker restarts on the same address with an empty memory store
    // (and a fresh WeChat): its version 1 is a newer credential, and watch
    // prints it instead of waiting for a version above 2.
    await first.close();
    running.splice(running.indexOf(first), 1);
    await broker(port);
    await until(() => w.lines.length === 3, "the restarted broker's token");
    expect(w.lines[2]).toMatchObject({ version: "1" });
    expect(w.lines[2]?.fingerprint).not.toBe(w.lines[1]?.fingerprint);
    expect(w.stderr()).toMatch(/WatchToken on 127\.0\.0\.1:\d+/);

    w.child.kill("SIGINT");
    expect(await w.exit).toBe(0);
  });

  it("exits 1 with the broker's refusal when the app is not configured", async () => {
    const port = await freePort();
    await broker(port);
    const w = watch(["--app", "nope", "--addr", `127.0.0.1:${port}`]);
    expect(await w.exit).toBe(1);
    expect(w.stderr()).toMatch(/NotFound: app 'nope' is not configured/);
    expect(w.lines).toEqual([]);
  });

  it("status shows the client instances per credential on the current version and on a replaced one", async () => {
    const port = await freePort();
    await broker(port);
    const tokens = createGrpcJsClient(TokenService, `127.0.0.1:${port}`);
    const key = { appId: SHOP.id, kind: TokenKind.ACCESS_TOKEN };
    const v1 = (await tokens.getToken(key)).token;
    await tokens.ackToken({ ...key, version: 1n, instance: "pod-a" });
    await tokens.ackToken({ ...key, version: 1n, instance: "pod-b" });
    await tokens.invalidateToken({ ...key, rejectedValue: v1?.value ?? "", errcode: 40001 });
    await tokens.ackToken({ ...key, version: 2n, instance: "pod-a" });
    tokens.close();
    const { stdout } = await promisify(execFile)(process.execPath, [
      BIN,
      "status",
      "--addr",
      `127.0.0.1:${port}`,
    ]);
    expect(stdout).toMatch(/CLIENTS/);
    expect(stdout).toMatch(/1 current, 1 on v1 \(works until \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
    expect(stdout).not.toMatch(/pod-a|pod-b/);
  });
});
