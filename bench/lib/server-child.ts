/**
 * A server under load, in a process of its own so the load generator does not
 * share its event loop. Run as
 * `node --import tsx bench/lib/server-child.ts <kind> [arg]` with an IPC
 * channel; it answers {@link ChildReady} once listening and exits on
 * `{ type: "close" }`. Kinds:
 *
 * - `broker`: the whole broker (emulator upstream, loopback, port 0);
 * - `grpc-baseline <hex>`: a bare grpc-js server whose GetToken answers the
 *   GetTokenResponse given as hex bytes (decoded and re-encoded per call);
 * - `connect-baseline <json>`: a bare connect-node server (h2c) whose
 *   TokenService.GetToken answers the GetTokenResponse given as JSON (the
 *   framework's own limit for the Connect port);
 * - `http2-baseline <json>`: a bare `node:http2` server answering every POST
 *   with the given JSON (the request body is read and parsed).
 */
import { writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import { Session } from "node:inspector/promises";
import { fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  type GetTokenRequest,
  GetTokenRequestSchema,
  GetTokenResponseSchema,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { startBenchBroker } from "./broker.js";
import { BENCH_APP, type ChildReady, GET_TOKEN_PATH } from "./protocol.js";

type Closer = () => Promise<void>;

async function startBroker(): Promise<{ ready: ChildReady; close: Closer }> {
  const h = await startBenchBroker(BENCH_APP);
  return {
    ready: { type: "ready", port: h.broker.grpc.port, connectUrl: h.broker.connect.url },
    close: () => h.close(),
  };
}

async function startGrpcBaseline(hex: string): Promise<{ ready: ChildReady; close: Closer }> {
  const answer = fromBinary(GetTokenResponseSchema, Buffer.from(hex, "hex"));
  const server = new grpc.Server();
  server.addService(
    {
      GetToken: {
        path: GET_TOKEN_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: GetTokenRequest) => Buffer.from(toBinary(GetTokenRequestSchema, m)),
        requestDeserialize: (b: Buffer) => fromBinary(GetTokenRequestSchema, b),
        responseSerialize: (m: typeof answer) => Buffer.from(toBinary(GetTokenResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(GetTokenResponseSchema, b),
      },
    },
    {
      GetToken: (
        _call: grpc.ServerUnaryCall<GetTokenRequest, typeof answer>,
        cb: grpc.sendUnaryData<typeof answer>,
      ) => cb(null, answer),
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    ready: { type: "ready", port, connectUrl: `http://127.0.0.1:${port}` },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 500).unref();
      }),
  };
}

async function startConnectBaseline(json: string): Promise<{ ready: ChildReady; close: Closer }> {
  const answer = fromJsonString(GetTokenResponseSchema, json);
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(TokenService, {
        getToken: () => answer,
      }),
  });
  return listenHttp2(http2.createServer(handler));
}

async function listenHttp2(
  server: http2.Http2Server,
): Promise<{ ready: ChildReady; close: Closer }> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    ready: { type: "ready", port, connectUrl: `http://127.0.0.1:${port}` },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startHttp2Baseline(json: string): Promise<{ ready: ChildReady; close: Closer }> {
  const body = Buffer.from(json);
  const server = http2.createServer();
  server.on("stream", (stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        stream.respond({ ":status": 400 });
        stream.end();
        return;
      }
      stream.respond({
        ":status": 200,
        "content-type": "application/json",
        "content-length": body.length,
      });
      stream.end(body);
    });
  });
  return listenHttp2(server);
}

const [kind, arg = ""] = process.argv.slice(2);
const started =
  kind === "broker"
    ? await startBroker()
    : kind === "grpc-baseline"
      ? await startGrpcBaseline(arg)
      : kind === "connect-baseline"
        ? await startConnectBaseline(arg)
        : kind === "http2-baseline"
          ? await startHttp2Baseline(arg)
          : undefined;
if (!started) {
  console.error(`server-child: unknown kind ${kind}`);
  process.exit(2);
}
/**
 * The V8 CPU profiler over the inspector protocol (what `node --cpu-prof`
 * uses), started and stopped on request so the profile covers only the load.
 */
const inspector = new Session();
inspector.connect();

async function onProfile(message: { type?: string; file?: string }): Promise<void> {
  if (message.type === "profile-start") {
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.setSamplingInterval", { interval: 200 });
    await inspector.post("Profiler.start");
    process.send?.({ type: "profile-started" });
  } else if (message.type === "profile-stop" && message.file) {
    const { profile } = await inspector.post("Profiler.stop");
    await writeFile(message.file, JSON.stringify(profile));
    process.send?.({ type: "profile-stopped" });
  }
}

process.on("message", (message: { type?: string; file?: string }) => {
  void onProfile(message);
  if (message.type === "close") {
    void started.close().finally(() => {
      // A clean exit, so --cpu-prof writes its profile.
      process.exit(0);
    });
  }
});
process.send?.(started.ready);
