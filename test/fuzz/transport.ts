/**
 * The fuzz test's side of the wire: the broker child process, raw TCP
 * exchanges, HTTP/2 streams on pooled sessions and HTTP/1.1 requests, each
 * with its own timeout so that nothing the broker does can hang the test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ChildMessage, LoggedError, MemorySample, ParentMessage } from "./child-protocol.js";

// ---- the broker child process ----

export interface BrokerChild {
  readonly grpcPort: number;
  readonly connectPort: number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** stderr so far (a crash's stack lands here). */
  stderr(): string;
  exitCode(): number | null | undefined;
  /** Heap after forced GC, and the error-level log lines since the last call. */
  memory(): Promise<{ sample: MemorySample; errors: LoggedError[] }>;
  /** Makes the emulator answer its next `times` requests `latencyMs` late. */
  slowUpstream(latencyMs: number, times: number): Promise<void>;
  close(): Promise<void>;
}

const CHILD_SCRIPT = new URL("./broker-child.ts", import.meta.url);

export async function spawnBrokerChild(timeoutMs = 20_000): Promise<BrokerChild> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", CHILD_SCRIPT.pathname],
    { stdio: ["ignore", "ignore", "pipe", "ipc"] },
  );
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  let exit: number | null | undefined;
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = true;
      exit = code ?? (signal ? -1 : null);
      resolve();
    }),
  );
  type Reply = Extract<ChildMessage, { id: number }>;
  const waiting = new Map<number, (m: Reply) => void>();
  let nextId = 1;
  const ready = new Promise<Extract<ChildMessage, { type: "ready" }>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`broker child not ready:\n${stderr}`)),
      timeoutMs,
    );
    child.on("message", (m: ChildMessage) => {
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve(m);
      } else if (m.type === "memory" || m.type === "fault") {
        waiting.get(m.id)?.(m);
        waiting.delete(m.id);
      }
    });
    void exitedPromise.then(() => {
      clearTimeout(timer);
      reject(new Error(`broker child exited with ${exit} before ready:\n${stderr}`));
    });
  });
  const info = await ready;
  const send = (m: ParentMessage) => child.send(m);
  const ask = (message: (id: number) => ParentMessage) =>
    new Promise<Reply>((resolve, reject) => {
      if (exited) {
        reject(new Error(`broker child exited with ${exit}:\n${stderr}`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(
        () => reject(new Error("no reply from the broker child in 10 s")),
        10_000,
      );
      waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      send(message(id));
    });
  return {
    grpcPort: info.grpcPort,
    connectPort: Number(new URL(info.connectUrl).port),
    alive: () => !exited,
    stderr: () => stderr,
    exitCode: () => exit,
    async memory() {
      const m = await ask((id) => ({ type: "memory", id }));
      if (m.type !== "memory") throw new Error(`unexpected reply ${m.type}`);
      return { sample: m.sample, errors: m.errors };
    },
    async slowUpstream(latencyMs, times) {
      await ask((id) => ({ type: "fault", id, latencyMs, times }));
    },
    async close() {
      if (exited) return;
      send({ type: "close" });
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exitedPromise;
      clearTimeout(killer);
    },
  };
}

// ---- raw TCP ----

export interface RawResult {
  /** Every byte the server sent. */
  received: Buffer;
  /**
   * server: the server ended or reset the connection; done: `until` was
   * satisfied and the client closed; held: the client closed after `holdMs`
   * as planned; timeout: none of those in time (a hang).
   */
  outcome: "server" | "done" | "held" | "timeout";
  /** The socket error, e.g. ECONNRESET, if the server reset. */
  error?: string;
}

export interface RawOptions {
  /** Written in order, with `gapMs` between chunks. */
  chunks: readonly Buffer[];
  gapMs?: number;
  /** Half-close after writing. */
  end?: boolean;
  /** Stop (client closes) as soon as this holds for what was received. */
  until?: (received: Buffer) => boolean;
  /** Close the connection ourselves after this long (slowloris cases). */
  holdMs?: number;
  timeoutMs: number;
}

export function rawExchange(port: number, o: RawOptions): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const parts: Buffer[] = [];
    let settled = false;
    let error: string | undefined;
    const timers: NodeJS.Timeout[] = [];
    const finish = (outcome: RawResult["outcome"]) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      socket.destroy();
      resolve({ received: Buffer.concat(parts), outcome, ...(error ? { error } : {}) });
    };
    socket.on("data", (d: Buffer) => {
      parts.push(d);
      if (o.until?.(Buffer.concat(parts))) finish("done");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on("close", () => finish("server"));
    socket.on("end", () => {
      // The server half-closed; give it a moment to close fully, then close ourselves.
      timers.push(setTimeout(() => finish("server"), 50));
    });
    timers.push(setTimeout(() => finish("timeout"), o.timeoutMs));
    if (o.holdMs !== undefined) {
      const holdMs = o.holdMs;
      timers.push(setTimeout(() => finish("held"), holdMs));
    }
    socket.once("connect", async () => {
      for (const [i, chunk] of o.chunks.entries()) {
        if (settled || socket.destroyed) return;
        if (i > 0 && o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
        if (settled || socket.destroyed) return;
        socket.write(chunk);
      }
      if (o.end && !settled && !socket.destroyed) socket.end();
    });
  });
}

// ---- HTTP/2 ----

export interface H2Result {
  headers?: http2.IncomingHttpHeaders;
  trailers?: http2.IncomingHttpHeaders;
  body: Buffer;
  /** RST_STREAM code the stream closed with (0 = NO_ERROR). */
  rstCode?: number;
  /** The client reset the stream after receiving a message (server streams). */
  canceledAfterMessage?: boolean;
  /**
   * The server ended its response but neither read the rest of the request
   * nor reset the stream within END_GRACE_MS; the client then reset it.
   */
  leftOpen?: boolean;
  timedOut?: boolean;
  error?: string;
}

export interface H2Request {
  headers: http2.OutgoingHttpHeaders;
  body: readonly Buffer[];
  /** Reset the stream (CANCEL) after writing the body, without ending it. */
  resetAfterBody?: boolean;
  /** Do not end the request stream after the body. */
  keepOpen?: boolean;
  /** Cancel once a full gRPC message has arrived (server-streaming calls). */
  cancelAfterFirstMessage?: boolean;
  timeoutMs: number;
}

/** A few long-lived sessions per port, replaced when the server closes one. */
export class H2Pool {
  private readonly sessions: (http2.ClientHttp2Session | undefined)[];
  private turn = 0;
  /** Sessions the pool had to replace (closed by GOAWAY or error). */
  replaced = 0;

  constructor(
    private readonly port: number,
    size: number,
  ) {
    this.sessions = new Array(size).fill(undefined);
  }

  get(): http2.ClientHttp2Session {
    const i = this.turn++ % this.sessions.length;
    const current = this.sessions[i];
    if (current && !current.closed && !current.destroyed) return current;
    if (current) this.replaced++;
    const session = http2.connect(`http://127.0.0.1:${this.port}`);
    session.on("error", () => {});
    session.on("goaway", () => {});
    this.sessions[i] = session;
    return session;
  }

  close(): Promise<void> {
    return Promise.all(
      this.sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s || s.destroyed) return resolve();
            const t = setTimeout(() => {
              s.destroy();
              resolve();
            }, 1000);
            s.close(() => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    ).then(() => {
      this.sessions.fill(undefined);
    });
  }
}

/** How long a stream may stay open after the server ended its response. */
const END_GRACE_MS = 300;

export function h2Call(session: http2.ClientHttp2Session, r: H2Request): Promise<H2Result> {
  return new Promise((resolve) => {
    const result: H2Result = { body: Buffer.alloc(0) };
    const parts: Buffer[] = [];
    let settled = false;
    let stream: http2.ClientHttp2Stream;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      result.body = Buffer.concat(parts);
      resolve(result);
    };
    const timer = setTimeout(() => {
      result.timedOut = true;
      stream?.close(http2.constants.NGHTTP2_CANCEL);
      finish();
    }, r.timeoutMs);
    try {
      stream = session.request(r.headers, { endStream: false });
    } catch (err) {
      result.error = (err as Error).message;
      finish();
      return;
    }
    stream.on("response", (headers) => {
      result.headers = headers;
    });
    stream.on("trailers", (trailers) => {
      result.trailers = trailers;
    });
    stream.on("data", (d: Buffer) => {
      parts.push(d);
      if (r.cancelAfterFirstMessage && !result.canceledAfterMessage) {
        const all = Buffer.concat(parts);
        if (all.length >= 5 && all.length >= 5 + all.readUInt32BE(1)) {
          result.canceledAfterMessage = true;
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }
      }
    });
    stream.on("end", () => {
      // The response is complete. A server that answered before reading the
      // whole request should reset the stream (RFC 9113 §8.1) or read on;
      // if it does neither, the upload is stuck: give up on it as a client would.
      const grace = setTimeout(() => {
        if (settled || stream.closed) return;
        result.leftOpen = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, END_GRACE_MS);
      stream.once("close", () => clearTimeout(grace));
    });
    stream.on("error", (err: Error) => {
      result.error = err.message;
    });
    stream.on("close", () => {
      result.rstCode = stream.rstCode;
      finish();
    });
    for (const chunk of r.body) stream.write(chunk);
    if (r.resetAfterBody) {
      // Let the DATA frames go out first, then RST_STREAM mid-message.
      setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    } else if (!r.keepOpen) stream.end();
  });
}

// ---- HTTP/1.1 ----

export interface H1Result {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body: Buffer;
  timedOut?: boolean;
  error?: string;
}

export interface H1Request {
  method: string;
  path: string;
  headers: http.OutgoingHttpHeaders;
  body?: Buffer;
  timeoutMs: number;
}

export function h1Call(port: number, agent: http.Agent, r: H1Request): Promise<H1Result> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const result: H1Result = { body: Buffer.alloc(0) };
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      result.body = Buffer.concat(parts);
      resolve(result);
    };
    let req: http.ClientRequest;
    const timer = setTimeout(() => {
      result.timedOut = true;
      req?.destroy();
      finish();
    }, r.timeoutMs);
    try {
      req = http.request({
        host: "127.0.0.1",
        port,
        method: r.method,
        path: r.path,
        // An explicit length: Node sends a GET/DELETE body unframed otherwise.
        headers: r.body ? { "content-length": r.body.length, ...r.headers } : r.headers,
        agent,
      });
    } catch (err) {
      result.error = (err as Error).message;
      finish();
      return;
    }
    req.on("response", (res) => {
      result.status = res.statusCode;
      result.headers = res.headers;
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", finish);
      res.on("error", (err) => {
        result.error = err.message;
        finish();
      });
    });
    req.on("error", (err) => {
      result.error = err.message;
      finish();
    });
    req.end(r.body);
  });
}

// ---- concurrency ----

/** Runs `tasks` with at most `concurrency` in flight. */
export async function runPool<T>(
  tasks: readonly (() => Promise<T>)[],
  concurrency: number,
): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return results;
}
