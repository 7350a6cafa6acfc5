/**
 * What the grants benchmark says to its two child processes (the broker, and
 * the load generator that calls it), and a handle on each: spawned pinned to
 * a core when taskset is there, asked questions over IPC, answered by id.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { childEntry } from "./lib/build.js";
import { pinned } from "./lib/child.js";

export const GET_TOKEN_PATH = "/tokenbroker.v1.TokenService/GetToken";

export interface MemorySample {
  readonly heapUsed: number;
  readonly rss: number;
  /** Users' tokens the broker holds in L1 (TokenManager.userTokensHeld). */
  readonly held: number;
}

/** What a load run measured (load child). */
export interface LoadResult {
  readonly calls: number;
  readonly failed: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Fill only: responses whose value was checked against the grant written, and mismatches. */
  readonly checked?: number;
  readonly mismatched?: number;
}

export type Request =
  /** Broker: GC, then heap and RSS. */
  | { readonly type: "memory" }
  /** Broker: resolves once its store has delivered `count` users' writes made after it started. */
  | { readonly type: "heard"; readonly count: number }
  /** Load: one GetToken for each user in [from, to). */
  | { readonly type: "fill"; readonly from: number; readonly to: number }
  /** Load: GetToken for `seconds` after a warm-up, round-robin over users [from, to), or the app token. */
  | {
      readonly type: "load";
      readonly target: "user" | "app";
      readonly from: number;
      readonly to: number;
      readonly seconds: number;
      readonly warmupSeconds: number;
    };

export type Reply =
  | { readonly type: "memory"; readonly sample: MemorySample }
  | { readonly type: "heard"; readonly heard: number }
  | { readonly type: "result"; readonly result: LoadResult };

/** Child → parent. */
export type ChildMessage =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "reply"; readonly id: number; readonly reply: Reply }
  | { readonly type: "failed"; readonly id: number; readonly message: string };

/** Parent → child. */
export type ParentMessage =
  | { readonly type: "ask"; readonly id: number; readonly request: Request }
  | { readonly type: "close" };

/** Answers the parent's questions with `answer`; a throw becomes a "failed" message. */
export function serveRequests(
  answer: (request: Request) => Promise<Reply>,
  close: () => Promise<void>,
): void {
  process.on("message", (m: ParentMessage) => {
    if (m.type === "close") {
      void close().finally(() => process.exit(0));
      return;
    }
    answer(m.request).then(
      (reply) => process.send?.({ type: "reply", id: m.id, reply } satisfies ChildMessage),
      (err: unknown) =>
        process.send?.({
          type: "failed",
          id: m.id,
          message: err instanceof Error ? (err.stack ?? err.message) : String(err),
        } satisfies ChildMessage),
    );
  });
  // The benchmark going away (even killed) ends this process too.
  process.on("disconnect", () => void close().finally(() => process.exit(0)));
}

export class GrantsChild {
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  #nextId = 1;
  #exited: Promise<void>;

  private constructor(
    proc: ChildProcess,
    readonly port: number,
  ) {
    this.#proc = proc;
    this.#exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.on("message", (m: ChildMessage) => {
      if (m.type === "ready") return;
      const waiter = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (m.type === "reply") waiter?.resolve(m.reply);
      else waiter?.reject(new Error(m.message));
    });
    proc.once("exit", (code) => {
      for (const w of this.#waiting.values()) w.reject(new Error(`child exited with ${code}`));
      this.#waiting.clear();
    });
  }

  /** Runs `source` (a bench entry point) in node with `execArgv`, pinned to `cpus`, and waits for "ready". */
  static async start(
    source: URL,
    env: NodeJS.ProcessEnv,
    options: { cpus?: string; execArgv?: string[] } = {},
  ): Promise<GrantsChild> {
    const entry = childEntry(source);
    const nodeArgs = [...(options.execArgv ?? []), ...entry.execArgv, entry.file];
    const [command, args] = options.cpus
      ? pinned(options.cpus, process.execPath, nodeArgs)
      : [process.execPath, nodeArgs];
    const proc = spawn(command, args, {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, NODE_ENV: "production", ...env },
    });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${source.pathname} not ready in 60 s`)),
        60_000,
      );
      proc.on("message", (m: ChildMessage) => {
        if (m.type !== "ready") return;
        clearTimeout(timer);
        resolve(m.port);
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${source.pathname} exited with ${code} before it was ready`));
      });
    });
    return new GrantsChild(proc, port);
  }

  ask(request: Request): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#proc.send({ type: "ask", id, request } satisfies ParentMessage);
    });
  }

  async memory(): Promise<MemorySample> {
    const reply = await this.ask({ type: "memory" });
    if (reply.type !== "memory") throw new Error(`expected a memory sample, got ${reply.type}`);
    return reply.sample;
  }

  async run(request: Extract<Request, { type: "fill" | "load" }>): Promise<LoadResult> {
    const reply = await this.ask(request);
    if (reply.type !== "result") throw new Error(`expected a load result, got ${reply.type}`);
    return reply.result;
  }

  /** Asks the child to close; kills it after 5 s. */
  async close(): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.connected) this.#proc.send({ type: "close" });
    const timer = setTimeout(() => this.#proc.kill("SIGKILL"), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
