import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { childEntry } from "./build.js";
import type { ChildReady } from "./protocol.js";

const CHILD_SOURCE = new URL("./server-child.ts", import.meta.url);

/** Whether `taskset` is there to pin processes to cores. */
export const hasTaskset: boolean = (() => {
  try {
    execFileSync("taskset", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Prefixes a command with `taskset -c <cpus>` when taskset exists and the
 * machine has more than one core, so server and load generator do not
 * compete for one core.
 */
export function pinned(cpus: string, command: string, args: string[]): [string, string[]] {
  return hasTaskset ? ["taskset", ["-c", cpus, command, ...args]] : [command, args];
}

export interface ServerChild {
  readonly ready: ChildReady;
  readonly pid: number;
  /** Sends `message` and waits for the child's message of type `reply`. */
  request(message: { type: string; file?: string }, reply: string): Promise<void>;
  /** Asks the child to close and waits for it to exit (killing it after 5 s). */
  close(): Promise<void>;
}

export interface SpawnOptions {
  /** `taskset -c` argument for the child, e.g. "0". */
  readonly cpus?: string;
}

/** Starts `bench/lib/server-child.ts <kind> [arg]` and waits until it listens. */
export async function spawnServer(
  kind: "broker" | "grpc-baseline" | "connect-baseline" | "http2-baseline",
  arg: string | undefined,
  options: SpawnOptions = {},
): Promise<ServerChild> {
  const entry = childEntry(CHILD_SOURCE);
  const nodeArgs = [...entry.execArgv, entry.file, kind, ...(arg === undefined ? [] : [arg])];
  const [command, args] = options.cpus
    ? pinned(options.cpus, process.execPath, nodeArgs)
    : [process.execPath, nodeArgs];
  const child: ChildProcess = spawn(command, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, NODE_ENV: "production" },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${kind} child did not start in 30 s`)),
      30_000,
    );
    child.once("message", (m: ChildReady) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} child exited with ${code} before listening`));
    });
  });
  let closing: Promise<void> | undefined;
  return {
    ready,
    pid: child.pid ?? 0,
    request(message, reply) {
      return new Promise<void>((resolve, reject) => {
        const onMessage = (m: { type?: string }) => {
          if (m.type !== reply) return;
          child.off("message", onMessage);
          child.off("exit", onExit);
          resolve();
        };
        const onExit = () => reject(new Error(`${kind} child exited before ${reply}`));
        child.on("message", onMessage);
        child.once("exit", onExit);
        child.send(message);
      });
    },
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.connected) child.send({ type: "close" });
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
