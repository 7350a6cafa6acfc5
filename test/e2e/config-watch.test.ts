import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";

/**
 * `serve --watch-config SECONDS` (issue 14): a Kubernetes ConfigMap or Secret
 * volume changes in place (the kubelet swaps a `..data` symlink; no signal
 * reaches the broker), so the broker reloads when the config or a file it
 * names changes. Volumes are laid out here as the kubelet lays them out.
 * Also `token-broker health`, the probe for orchestrators without native
 * gRPC probes.
 */

const BIN = "bin/token-broker.js";
const X = { id: "x", appid: "wx00000000000000w1", secret: "x-secret-watch-before-01" };
const Z = { id: "z", appid: "wx00000000000000w3", secret: "z-secret-watch-000000003" };
const X_ROTATED = "x-secret-watch-after-002";
const run = promisify(execFile);

type Line = Record<string, unknown>;

/** A directory as the kubelet mounts a ConfigMap or Secret: files behind `..data`. */
class Volume {
  #generation = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir);
  }

  /** Publishes `files` as the kubelet does: a new timestamped folder, then one rename of `..data`. */
  publish(files: Record<string, string>): void {
    const gen = `..2026_01_01_00_00_0${this.#generation++}`;
    mkdirSync(join(this.dir, gen));
    for (const [name, text] of Object.entries(files))
      writeFileSync(join(this.dir, gen, name), text);
    symlinkSync(gen, join(this.dir, "..data_tmp"));
    renameSync(join(this.dir, "..data_tmp"), join(this.dir, "..data"));
    for (const name of Object.keys(files)) {
      try {
        symlinkSync(join("..data", name), join(this.dir, name));
      } catch {
        // already linked through ..data
      }
    }
  }
}

describe("serve --watch-config on kubelet-style volumes", () => {
  let emulator: Emulator;
  let upstream: string;
  let root: string;
  let config: Volume;
  let secrets: Volume;
  let child: ChildProcess;
  const lines: Line[] = [];
  let exit: Promise<number | null>;
  let grpcAddr: string;
  let client: ReturnType<typeof createClient<typeof TokenService>>;

  /** The first line with `msg` logged after the `from`-th line (fails after 15 s). */
  const line = async (msg: string, from: number): Promise<Line> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const found = lines.slice(from).find((l) => l.msg === msg);
      if (found) return found;
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`no "${msg}" in the broker's log (exit code ${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const configText = (apps: { id: string; appid: string }[]) =>
    [
      "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
      `upstream: { baseUrl: "${upstream}", timeoutMs: 2000 }`,
      "apps:",
      ...apps.flatMap((a) => [
        `  - id: ${a.id}`,
        `    appid: ${a.appid}`,
        `    secret: { file: ${join(secrets.dir, a.id)} }`,
        "    prefetch: false",
      ]),
    ].join("\n");

  beforeAll(async () => {
    emulator = createEmulator({ apps: [X, Z] });
    upstream = (await emulator.listen(0, "127.0.0.1")).url;
    root = mkdtempSync(join(tmpdir(), "broker-watch-"));
    config = new Volume(join(root, "config"));
    secrets = new Volume(join(root, "secrets"));
    secrets.publish({ x: `${X.secret}\n`, z: `${Z.secret}\n` });
    config.publish({ "broker.yaml": configText([X]) });
    child = spawn(
      process.execPath,
      [BIN, "serve", "--config", join(config.dir, "broker.yaml"), "--watch-config", "1"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    exit = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) =>
      lines.push(JSON.parse(l) as Line),
    );
    const serving = await line("token broker serving", 0);
    grpcAddr = String(serving.grpc).replace(/^http:\/\//, "");
    client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: String(serving.connect), httpVersion: "2" }),
    );
  }, 30_000);

  afterAll(async () => {
    child?.kill("SIGKILL");
    await emulator?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("token-broker health prints SERVING and exits 0; an unknown service exits 1", async () => {
    const ok = await run(process.execPath, [BIN, "health", "--addr", grpcAddr]);
    expect(ok.stdout.trim()).toBe("SERVING");
    const unknown = await run(process.execPath, [
      BIN,
      "health",
      "--addr",
      grpcAddr,
      "--service",
      "no.such.Service",
    ]).catch((e: { code: number; stderr: string }) => e);
    expect(unknown).toMatchObject({ code: 1 });
    expect((unknown as { stderr: string }).stderr).toMatch(/NotFound: unknown service/);
  }, 30_000);

  it("reloads when the ConfigMap adds an app, when the Secret holds a new AppSecret, and refuses a broken config", async () => {
    let from = lines.length;
    config.publish({ "broker.yaml": configText([X, Z]) });
    await line("config files changed; reloading", from);
    expect(await line("config reloaded", from)).toMatchObject({ added: ["z"], removed: [] });
    const z = await client.getToken({ appId: "z", kind: TokenKind.ACCESS_TOKEN });
    expect(z.token?.version).toBe(1n);

    // A reset AppSecret, published through the Secret volume only.
    from = lines.length;
    emulator.control.resetSecret(X.appid, X_ROTATED);
    secrets.publish({ x: `${X_ROTATED}\n`, z: `${Z.secret}\n` });
    expect(await line("config reloaded", from)).toMatchObject({
      added: [],
      changed: [{ app: "x", keys: ["secret"] }],
    });
    // x held no token yet, and the emulator now refuses the old secret (40001): served means the new one is used.
    const x = await client.getToken({ appId: "x", kind: TokenKind.ACCESS_TOKEN });
    expect(x.token?.version).toBe(1n);

    // A broken config changes nothing; the broker keeps serving.
    from = lines.length;
    config.publish({ "broker.yaml": `${configText([X, Z])}\n    tokenMode: sometimes\n` });
    expect(
      await line("config reload rejected; the broker keeps its running config", from),
    ).toMatchObject({
      level: "error",
    });
    expect(
      (await client.getToken({ appId: "z", kind: TokenKind.ACCESS_TOKEN })).token?.version,
    ).toBe(1n);
  }, 60_000);

  it("exits 0 on SIGTERM", async () => {
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  }, 30_000);
});
