import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  CLIENT_KINDS,
  eventually,
  LEAKED_SECRET,
  rejection,
  type Servers,
  startServers,
  statusOf,
  type TestClient,
} from "./harness.js";

describe.each(CLIENT_KINDS)("$name", (kind) => {
  let servers: Servers;
  let client: TestClient;

  beforeEach(async () => {
    servers = await startServers();
    client = kind.make(servers[kind.listener].url);
  });

  afterEach(async () => {
    client.close();
    await servers.close();
  });

  it("unary: returns the handler's answer; the handler sees headers, peer and protocol", async () => {
    const res = await client.getToken("demo", { headers: { "x-request-id": "req-42" } });
    expect(res.token?.appId).toBe("demo");
    expect(res.token?.value).toBe("token-of-demo-v1");
    expect(res.token?.version).toBe(1n);
    const [call] = servers.calls;
    expect(call?.header.get("x-request-id")).toBe("req-42");
    expect(call?.peer?.address).toBe("127.0.0.1");
    expect(call?.peer?.port).toBeGreaterThan(0);
    expect(call?.protocol).toBe(kind.protocol);
  });

  it("unary: a ConnectError reaches the client with its code and message", async () => {
    expect(await rejection(client.getToken("missing"))).toEqual({
      code: Code.NotFound,
      message: 'app "missing" is not configured',
    });
    expect(await rejection(client.getToken(""))).toEqual({
      code: Code.InvalidArgument,
      message: "app_id is required",
    });
  });

  it("unary: any other error is INTERNAL with a generic message; the real one is only logged", async () => {
    const status = await rejection(client.getToken("boom"));
    expect(status).toEqual({ code: Code.Internal, message: "internal error" });
    const logged = servers.logs.filter((l) => l.level === 50);
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged[0])).toContain(LEAKED_SECRET);
    expect(logged[0]?.procedure).toBe("/tokenbroker.v1.TokenService/GetToken");
  });

  it("server streaming: delivers every message in order, then OK", async () => {
    const versions: bigint[] = [];
    for await (const res of client.watchToken("finite")) versions.push(res.token?.version ?? 0n);
    expect(versions).toEqual([1n, 2n, 3n]);
  });

  it("server streaming: an error after some messages arrives after them", async () => {
    const versions: bigint[] = [];
    let status: { code: number; message: string } | undefined;
    try {
      for await (const res of client.watchToken("fail")) versions.push(res.token?.version ?? 0n);
    } catch (err) {
      status = statusOf(err);
    }
    expect(versions).toEqual([1n, 2n]);
    expect(status).toEqual({
      code: Code.FailedPrecondition,
      message: "upstream rejected the credentials",
    });
  });

  it("client cancel aborts the handler's signal (unary and stream)", async () => {
    const unary = new AbortController();
    const pending = rejection(client.getToken("hang", { signal: unary.signal }));
    await eventually(() => servers.calls.length === 1);
    unary.abort();
    expect((await pending).code).toBe(Code.Canceled);
    await eventually(() => servers.calls[0]?.signal.aborted === true);

    const stream = new AbortController();
    const it = client.watchToken("open", { signal: stream.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value?.token?.version).toBe(1n);
    stream.abort();
    // Messages already buffered may still be delivered; the stream then fails.
    const drain = async () => {
      while (!(await it.next()).done);
    };
    expect((await rejection(drain())).code).toBe(Code.Canceled);
    await eventually(() => servers.calls[1]?.signal.aborted === true);
  });

  it("deadline: the client gets DEADLINE_EXCEEDED and the handler's signal aborts", async () => {
    const started = Date.now();
    expect((await rejection(client.getToken("hang", { timeoutMs: 300 }))).code).toBe(
      Code.DeadlineExceeded,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    const [call] = servers.calls;
    expect(call?.timeoutMs).toBeGreaterThan(0);
    expect(call?.timeoutMs).toBeLessThanOrEqual(300);
    await eventually(() => call?.signal.aborted === true);
  });
});

describe("both listeners", () => {
  let servers: Servers | undefined;
  afterEach(async () => {
    await servers?.close();
    servers = undefined;
  });

  it.each([
    { name: "gRPC on the grpc port", listener: "grpc" as const, make: createGrpcTransport },
    {
      name: "Connect HTTP/1.1 on the connect port",
      listener: "connect" as const,
      make: (o: { baseUrl: string }) => createConnectTransport({ ...o, httpVersion: "1.1" }),
    },
  ])("send the handler's response headers and trailers ($name)", async ({ listener, make }) => {
    servers = await startServers();
    const client = createClient(TokenService, make({ baseUrl: servers[listener].url }));
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await client.invalidateToken(
      { appId: "demo", rejectedValue: "x" },
      { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
    );
    expect(res.refreshed).toBe(true);
    expect(header?.get("x-broker")).toBe("test");
    expect(trailer?.get("x-outcome")).toBe("refreshed");
  });

  it("enforce maxReceiveMessageBytes with RESOURCE_EXHAUSTED", async () => {
    servers = await startServers({ maxReceiveMessageBytes: 256 });
    const big = "x".repeat(1_000);
    for (const kind of CLIENT_KINDS.filter(
      (k) => k.name.startsWith("grpc-js") || k.protocol === "connect",
    )) {
      const client = kind.make(servers[kind.listener].url);
      try {
        expect((await rejection(client.getToken(big))).code, kind.name).toBe(
          Code.ResourceExhausted,
        );
        expect((await client.getToken("small")).token?.appId, kind.name).toBe("small");
      } finally {
        client.close();
      }
    }
    expect(servers.calls.map((c) => c.appId)).toEqual(["small", "small", "small", "small"]);
  });
});
