import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { FloodChildMessage } from "./flood-broker-child.js";

/**
 * Issue 9 item 2 over real sockets, against a broker process: Health/Watch
 * floods, streams per connection, and requests whose body never arrives.
 * The broker listens on 127.0.0.1 and allows only 127.0.0.2/32, so a client
 * bound to 127.0.0.1 is outside the allowlist and one bound to 127.0.0.2 is
 * inside.
 */

const CHILD = new URL("./flood-broker-child.ts", import.meta.url);
const OUTSIDE = "127.0.0.1";
const INSIDE = "127.0.0.2";
const MB = 1024 * 1024;

interface Child {
  readonly grpcPort: number;
  readonly connectPort: number;
  memory(): Promise<Extract<FloodChildMessage, { type: "memory" }>>;
  /** Audit lines written so far. */
  readonly audit: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

let child: Child | undefined;
afterEach(async () => {
  await child?.close();
  child = undefined;
});

async function spawnBroker(listen: Record<string, unknown> = {}): Promise<Child> {
  const config = {
    listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0", ...listen },
    security: { allowCidrs: [`${INSIDE}/32`] },
  };
  const proc: ChildProcess = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", CHILD.pathname],
    {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: { ...process.env, FLOOD_BROKER_CONFIG: JSON.stringify(config) },
    },
  );
  const audit: Array<Record<string, unknown>> = [];
  let pending = "";
  proc.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) audit.push(JSON.parse(line));
  });
  let stderr = "";
  proc.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr = (stderr + d).slice(-20_000);
  });
  const [ready] = (await Promise.race([
    once(proc, "message"),
    once(proc, "exit").then(() => {
      throw new Error(`broker child exited:\n${stderr}`);
    }),
  ])) as [Extract<FloodChildMessage, { type: "ready" }>];
  const c: Child = {
    grpcPort: ready.grpcPort,
    connectPort: ready.connectPort,
    audit,
    async memory() {
      proc.send({ type: "memory" });
      const [m] = (await once(proc, "message")) as [Extract<FloodChildMessage, { type: "memory" }>];
      return m;
    },
    async close() {
      const exited = once(proc, "exit");
      proc.disconnect();
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return c;
}

/** An HTTP/2 connection from `from` (127.0.0.1 or 127.0.0.2) to the broker's port. */
function connectFrom(from: string, port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => net.connect({ host: "127.0.0.1", port, localAddress: from }),
  });
  session.on("error", () => {});
  return session;
}

/** The length-prefixed gRPC frame of an empty message (HealthCheckRequest for the server as a whole). */
const EMPTY_MESSAGE = Buffer.alloc(5);

interface StreamOutcome {
  /** grpc-status of the answer, if any came (headers or trailers). */
  status: string | undefined;
  /** A status message arrived and the stream stayed open: a watch being served. */
  watching: boolean;
}

/**
 * Opens `count` Health/Watch streams on `session`; resolves with each one's
 * outcome once every stream is either answered with a status, closed, or
 * watching (sent its first message and still open).
 */
function watchFlood(session: http2.ClientHttp2Session, count: number): Promise<StreamOutcome[]> {
  const one = () =>
    new Promise<StreamOutcome>((resolve) => {
      const outcome: StreamOutcome = { status: undefined, watching: false };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Watch",
          "content-type": "application/grpc",
          te: "trailers",
        });
      } catch {
        resolve(outcome);
        return;
      }
      stream.on("error", () => {});
      const status = (h: http2.IncomingHttpHeaders) => {
        const s = h["grpc-status"];
        if (typeof s === "string") {
          outcome.status = s;
          resolve(outcome);
        }
      };
      stream.on("response", status);
      stream.on("trailers", status);
      stream.on("data", () => {
        outcome.watching = true;
        resolve(outcome);
      });
      stream.on("close", () => resolve(outcome));
      stream.end(EMPTY_MESSAGE);
    });
  return Promise.all(Array.from({ length: count }, one));
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("stream floods (issue 9 item 2)", () => {
  it("5,000 Health/Watch streams from outside the allowlist: refused at accept on both ports, memory flat, one audit line per peer", async () => {
    child = await spawnBroker();
    const broker = child;
    const before = await broker.memory();
    const sessions = [broker.grpcPort, broker.connectPort].flatMap((port) =>
      Array.from({ length: 25 }, () => connectFrom(OUTSIDE, port)),
    );
    // 50 connections, 100 streams each: 5,000 watches.
    const outcomes = (await Promise.all(sessions.map((s) => watchFlood(s, 100)))).flat();
    for (const s of sessions) s.destroy();
    expect(outcomes).toHaveLength(5000);
    expect(outcomes.filter((o) => o.status !== undefined || o.watching)).toEqual([]);
    const after = await broker.memory();
    expect(after.rss - before.rss).toBeLessThan(40 * MB);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(20 * MB);
    // No connection was kept.
    await waitFor(async () => (await broker.memory()).sockets <= before.sockets, 10_000);
    const refused = broker.audit.filter((l) => l.event === "connection_refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ stream: "audit", address: OUTSIDE });
  }, 120_000);

  it("5,000 Health/Watch streams from inside: 100 streams per connection, 10 watches per peer, the rest RESOURCE_EXHAUSTED; memory bounded", async () => {
    child = await spawnBroker();
    const broker = child;
    const before = await broker.memory();
    const sessions = [broker.grpcPort, broker.connectPort].map((port) => connectFrom(INSIDE, port));
    const settings = await Promise.all(
      sessions.map(
        (s) => new Promise<http2.Settings>((resolve) => s.once("remoteSettings", resolve)),
      ),
    );
    expect(settings.map((s) => s.maxConcurrentStreams)).toEqual([100, 100]);
    const outcomes = (await Promise.all(sessions.map((s) => watchFlood(s, 2500)))).flat();
    expect(outcomes.filter((o) => o.watching)).toHaveLength(10);
    expect(outcomes.filter((o) => o.status === "8")).toHaveLength(4990);
    const during = await broker.memory();
    expect(during.rss - before.rss).toBeLessThan(60 * MB);
    for (const s of sessions) s.destroy();
  }, 120_000);

  it("a request whose body never arrives is answered or reset after requestTimeoutMs, audited once per peer, and its connection reclaimed", async () => {
    child = await spawnBroker({ requestTimeoutMs: 300, idleTimeoutMs: 1000 });
    const broker = child;
    const stall = (session: http2.ClientHttp2Session) =>
      new Promise<{ status: string | undefined; rstCode: number | undefined }>((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/tokenbroker.v1.TokenService/GetToken",
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("error", () => {});
        let status: string | undefined;
        const onStatus = (h: http2.IncomingHttpHeaders) => {
          if (typeof h["grpc-status"] === "string") {
            status = h["grpc-status"];
            resolve({ status, rstCode: undefined });
          }
        };
        stream.on("response", onStatus);
        stream.on("trailers", onStatus);
        stream.on("close", () => resolve({ status, rstCode: stream.rstCode }));
        // Half a message (the prefix announces 10 bytes), and no end.
        stream.write(Buffer.from([0, 0, 0, 0, 10, 0x0a, 0x04]));
      });
    const grpc = connectFrom(INSIDE, broker.grpcPort);
    const connect = connectFrom(INSIDE, broker.connectPort);
    const [onGrpc, onConnect] = await Promise.all([stall(grpc), stall(connect)]);
    // grpc-js answers the call DEADLINE_EXCEEDED; the Connect port resets the stream.
    expect(onGrpc.status).toBe("4");
    expect(onConnect.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    // The client never finishes its half-open stream on the gRPC port; the
    // connection is reclaimed all the same.
    await waitFor(() => grpc.closed || grpc.destroyed, 10_000);
    // HTTP/1.1: a body shorter than its Content-Length gets 408.
    const h1 = net.connect({ host: "127.0.0.1", port: broker.connectPort, localAddress: INSIDE });
    h1.write(
      "POST /tokenbroker.v1.TokenService/GetToken HTTP/1.1\r\nHost: x\r\n" +
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    let answer = "";
    h1.setEncoding("utf8").on("data", (d: string) => {
      answer += d;
    });
    await once(h1, "close");
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    connect.destroy();
    await waitFor(() => broker.audit.some((l) => l.event === "request_timeout"), 5_000);
    const lines = broker.audit.filter((l) => l.event === "request_timeout");
    // Three stalled requests from one peer: one line (the rest are counted per window).
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ address: INSIDE, timeoutMs: 300 });
  }, 60_000);
});
