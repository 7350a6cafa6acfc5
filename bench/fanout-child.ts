/**
 * A broker (or, for the baseline, a bare grpc-js server) for the fan-out
 * benchmark, in a process of its own so the clients do not share its event
 * loop and its heap can be read alone. Run as
 * `node --expose-gc --import tsx bench/fanout-child.ts` with an IPC channel;
 * FANOUT_MODE picks "broker" or "bare", FANOUT_REDIS_URL/FANOUT_REDIS_PREFIX
 * select the Redis store. See {@link ChildMessage} and {@link ParentMessage}.
 */
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { TokenKind, WatchTokenResponseSchema } from "../gen/tokenbroker/v1/token_service_pb.js";
import {
  type ChildMessage,
  type ChildMode,
  FANOUT_APP,
  type MemorySample,
  nowMs,
  type ParentMessage,
  WATCH_PATH,
} from "./fanout-protocol.js";
import { startBenchBroker } from "./lib/broker.js";

function send(message: ChildMessage): void {
  process.send?.(message);
}

async function sample(): Promise<MemorySample> {
  const gc = globalThis.gc;
  if (!gc) throw new Error("run with --expose-gc");
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers };
}

interface Served {
  port: number;
  close(): Promise<void>;
  push?(version: number): number;
}

async function startBroker(): Promise<Served> {
  const url = process.env.FANOUT_REDIS_URL;
  const harness = await startBenchBroker(FANOUT_APP, {
    // The full run puts 1,000 streams on each of its 10 connections, as the
    // figures in BENCHMARKS.md were measured (listen.maxConcurrentStreams
    // defaults to 100 per connection).
    listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0", maxConcurrentStreams: 1000 },
    ...(url
      ? { store: { type: "redis", url, prefix: process.env.FANOUT_REDIS_PREFIX ?? "fanout" } }
      : {}),
  });
  // An in-process watcher, opened before any client stream: it sees a new
  // version as soon as the store's write (or the Redis notification) reaches
  // this replica's watch hub, which is the commit time the benchmark measures from.
  const stop = new AbortController();
  void (async () => {
    let first = true;
    for await (const event of harness.broker.manager.watch(
      FANOUT_APP.id,
      "access_token",
      stop.signal,
    )) {
      const at = nowMs();
      if (first) {
        first = false;
        continue;
      }
      send({ type: "commit", version: event.credential.version, at });
    }
  })().catch(() => undefined);
  return {
    port: harness.broker.grpc.port,
    async close() {
      stop.abort();
      await harness.close();
    },
  };
}

/** The baseline: grpc-js alone holding the streams and writing one pre-encoded message to each. */
async function startBare(): Promise<Served> {
  const server = new grpc.Server();
  const calls = new Set<grpc.ServerWritableStream<Buffer, Buffer>>();
  const identity = (b: Buffer) => b;
  server.addService(
    {
      watchToken: {
        path: WATCH_PATH,
        requestStream: false,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      watchToken(call: grpc.ServerWritableStream<Buffer, Buffer>) {
        calls.add(call);
        const drop = () => calls.delete(call);
        call.on("cancelled", drop);
        call.on("close", drop);
        call.write(message(1));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    push(version) {
      const bytes = message(version);
      for (const call of calls) call.write(bytes);
      return calls.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** A WatchTokenResponse of the same shape the broker sends. */
function message(version: number): Buffer {
  const now = Date.now();
  return Buffer.from(
    toBinary(
      WatchTokenResponseSchema,
      create(WatchTokenResponseSchema, {
        token: {
          appId: FANOUT_APP.id,
          kind: TokenKind.ACCESS_TOKEN,
          value: `bare-token-${version}-${"x".repeat(120)}`,
          expiresAt: timestampFromMs(now + 7_200_000),
          expiresIn: 7200n,
          version: BigInt(version),
          fetchedAt: timestampFromMs(now),
          fingerprint: "0123456789abcdef",
        },
      }),
    ),
  );
}

const mode = (process.env.FANOUT_MODE ?? "broker") as ChildMode;
const served = mode === "bare" ? await startBare() : await startBroker();

let closing: Promise<void> | undefined;
function close(): Promise<void> {
  closing ??= served.close();
  return closing;
}

process.on("message", (message: ParentMessage) => {
  if (message.type === "memory") {
    void sample().then((s) => {
      // FANOUT_HEAP_SNAPSHOT_DIR: a heap snapshot at every memory sample, to see what a stream holds.
      const dir = process.env.FANOUT_HEAP_SNAPSHOT_DIR;
      if (dir) writeHeapSnapshot(join(dir, `${process.pid}-${message.id}.heapsnapshot`));
      send({ type: "memory", id: message.id, sample: s });
    });
  } else if (message.type === "push") {
    const at = nowMs();
    const streams = served.push?.(message.version) ?? 0;
    send({ type: "pushed", id: message.id, at, streams });
  } else if (message.type === "close") {
    void close().then(() => {
      send({ type: "closed" });
      process.disconnect?.();
    });
  }
});
// The benchmark going away (even killed) ends this process too.
process.on("disconnect", () => {
  void close().finally(() => process.exit(0));
});

send({ type: "ready", grpcPort: served.port });
