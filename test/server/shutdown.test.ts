import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { SHUTDOWN_MESSAGE } from "../../src/server/index.js";
import {
  CLIENT_KINDS,
  type ClientKind,
  eventually,
  rejection,
  type Servers,
  startServers,
  type TestClient,
} from "./harness.js";

let servers: Servers | undefined;
let client: TestClient | undefined;

afterEach(async () => {
  client?.close();
  await servers?.close();
  servers = undefined;
  client = undefined;
});

async function setUp(kind: ClientKind) {
  servers = await startServers();
  client = kind.make(servers[kind.listener].url);
  return { servers, client, server: servers[kind.listener] };
}

const unavailable = { code: Code.Unavailable, message: SHUTDOWN_MESSAGE };

describe.each(CLIENT_KINDS)("close() seen by $name", (kind) => {
  it("ends open streams with UNAVAILABLE at once, flips health, and lets unary calls finish", async () => {
    const { servers, client, server } = await setUp(kind);
    const watch = client.watchToken("open")[Symbol.asyncIterator]();
    for (const v of [1n, 2n, 3n]) expect((await watch.next()).value?.token?.version).toBe(v);
    const health = client.healthWatch("")[Symbol.asyncIterator]();
    expect((await health.next()).value?.status).toBe(ServingStatus.SERVING);
    const unary = client.getToken("slow:400");
    await eventually(() => servers.calls.some((c) => c.appId === "slow:400"));

    const started = Date.now();
    const closed = server.close({ graceMs: 5_000 });

    expect(await rejection(watch.next())).toEqual(unavailable);
    expect(Date.now() - started).toBeLessThan(300);
    expect((await health.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
    expect(await rejection(health.next())).toEqual(unavailable);
    // The stream handler's signal carries the shutdown reason.
    const watchCall = servers.calls.find((c) => c.method === "WatchToken");
    expect(watchCall?.signal.reason).toEqual(new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable));

    expect((await unary).token?.appId).toBe("slow:400");
    expect(servers.calls.find((c) => c.appId === "slow:400")?.signal.reason).not.toBeInstanceOf(
      ConnectError,
    );
    await closed;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await rejection(client.getToken("after-close"))).code).toBe(Code.Unavailable);
  });
});

describe.each(CLIENT_KINDS)("forced close seen by $name", (kind) => {
  it("answers a unary call whose handler ignores its signal with UNAVAILABLE once graceMs is over", async () => {
    const { servers, client, server } = await setUp(kind);
    const unary = rejection(client.getToken("slow:5000"));
    await eventually(() => servers.calls.length === 1);
    const started = Date.now();
    await server.close({ graceMs: 200 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await unary).toEqual(unavailable);
  });
});

const ONE_CLIENT_PER_LISTENER = [
  CLIENT_KINDS.find((k) => k.listener === "grpc"),
  CLIENT_KINDS.find((k) => k.name === "Connect over HTTP/1.1"),
  CLIENT_KINDS.find((k) => k.name === "Connect over HTTP/2"),
].filter((k): k is ClientKind => k !== undefined);

describe.each(ONE_CLIENT_PER_LISTENER)("close() with $name", (kind) => {
  it("ends a stream whose handler ignores its signal", async () => {
    const { client, server } = await setUp(kind);
    const watch = client.watchToken("stubborn")[Symbol.asyncIterator]();
    for (const v of [1n, 2n, 3n]) expect((await watch.next()).value?.token?.version).toBe(v);
    const closed = server.close({ graceMs: 5_000 });
    expect(await rejection(watch.next())).toEqual(unavailable);
    await closed;
  });

  it("aborts unary calls still running after graceMs with UNAVAILABLE", async () => {
    const { servers, client, server } = await setUp(kind);
    const unary = rejection(client.getToken("hang"));
    await eventually(() => servers.calls.length === 1);
    const started = Date.now();
    await server.close({ graceMs: 300 });
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(290);
    expect(tookMs).toBeLessThan(1_500);
    expect(await unary).toEqual(unavailable);
    expect(servers.calls[0]?.signal.reason).toEqual(
      new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable),
    );
  });

  it("is idempotent", async () => {
    const { server } = await setUp(kind);
    const first = server.close({ graceMs: 100 });
    expect(server.close()).toBe(first);
    await first;
    await expect(server.close()).resolves.toBeUndefined();
  });
});
