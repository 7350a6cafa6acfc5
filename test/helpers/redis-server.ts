import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MonitorRecording, startMonitorRecording } from "./leak-recorder.js";

/**
 * Every redis-server a test started, killed when the test process exits even
 * if its afterAll never ran (a crashed worker), so none is left running.
 */
const started = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of started) child.kill("SIGKILL");
});

/** Registers a child process to be killed when this process exits. */
export function killOnExit(child: ChildProcess): void {
  started.add(child);
  child.once("exit", () => started.delete(child));
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM, or SIGKILL to simulate a crash) and waits for exit. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  start(): Promise<void>;
  readonly running: boolean;
}

/**
 * A real redis-server process on a free loopback port, owned by the test:
 * it can be stopped, killed and restarted to exercise outages. Nothing is
 * persisted. `extraArgs` are passed through (e.g. ["--cluster-enabled", "yes"]).
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  port?: number,
): Promise<RedisServer> {
  const chosen = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "broker-redis-"));
  let child: ChildProcess | undefined;
  // Leak-scan hook (test/leak-scan.global-setup.ts): while TOKEN_BROKER_LEAK_RECORD_DIR
  // is set, a MONITOR connection records every command this server runs; otherwise none.
  let monitor: MonitorRecording | undefined;

  async function start(): Promise<void> {
    const proc = spawn(
      "redis-server",
      [
        "--port",
        String(chosen),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        ...extraArgs,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = proc;
    killOnExit(proc);
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(
        () => reject(new Error(`redis-server on ${chosen} not ready:\n${output}`)),
        10_000,
      );
      proc.stdout?.on("data", (d: Buffer) => {
        output += d.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
      proc.once("error", (err) => {
        clearTimeout(timer);
        reject(
          new Error(
            `cannot start redis-server (install it: scripts/install-test-deps.sh): ${err.message}`,
          ),
        );
      });
    });
    monitor = await startMonitorRecording(chosen); // leak-scan hook, see above
  }

  async function stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc && proc.exitCode === null)
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill(signal);
      });
    // Leak-scan hook: closed once the server is gone, so its last commands are recorded.
    await monitor?.close();
    monitor = undefined;
  }

  await start();
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    get running() {
      return child !== undefined && child.exitCode === null;
    },
    start,
    async stop(signal) {
      await stop(signal);
      if (signal === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
