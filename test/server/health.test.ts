import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { HealthStatus, ServingStatus } from "../../src/server/index.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { rejection, type Servers, startServers } from "./harness.js";

describe("HealthStatus", () => {
  it("starts with the server SERVING and tracks per-service statuses", () => {
    const status = new HealthStatus();
    expect(status.get("")).toBe(ServingStatus.SERVING);
    expect(status.get("a.v1.A")).toBeUndefined();
    status.set("a.v1.A", ServingStatus.NOT_SERVING);
    expect([...status.list()]).toEqual([
      ["", ServingStatus.SERVING],
      ["a.v1.A", ServingStatus.NOT_SERVING],
    ]);
  });

  it("watch yields the current status, then only changes", async () => {
    const status = new HealthStatus();
    const ac = new AbortController();
    const seen: ServingStatus[] = [];
    const done = (async () => {
      for await (const s of status.watch("a.v1.A", ac.signal)) {
        seen.push(s);
        if (seen.length === 1) {
          status.set("a.v1.A", ServingStatus.SERVING);
          status.set("a.v1.A", ServingStatus.SERVING);
          status.set("other", ServingStatus.NOT_SERVING);
          status.set("a.v1.A", ServingStatus.NOT_SERVING);
        }
        if (seen.length === 3) ac.abort(new Error("enough"));
      }
    })();
    await expect(done).rejects.toThrow();
    expect(seen).toEqual([
      ServingStatus.SERVICE_UNKNOWN,
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
    ]);
  });

  it("drain makes every service NOT_SERVING for good", () => {
    const status = new HealthStatus({ "": ServingStatus.SERVING, "a.v1.A": ServingStatus.SERVING });
    status.drain();
    expect(status.draining).toBe(true);
    expect(status.get("")).toBe(ServingStatus.NOT_SERVING);
    expect(status.get("a.v1.A")).toBe(ServingStatus.NOT_SERVING);
    status.set("a.v1.A", ServingStatus.SERVING);
    status.set("b.v1.B", ServingStatus.SERVING);
    expect(status.get("a.v1.A")).toBe(ServingStatus.NOT_SERVING);
    expect(status.get("b.v1.B")).toBe(ServingStatus.NOT_SERVING);
  });
});

describe("grpc.health.v1.Health over the wire", () => {
  let servers: Servers;
  beforeEach(async () => {
    servers = await startServers();
  });
  afterEach(async () => {
    await servers.close();
  });

  const clients = [
    {
      name: "grpc-js on the grpc port",
      make: (s: Servers) => {
        const c = createGrpcJsClient(Health, s.grpc.url);
        return { client: c, close: () => c.close() };
      },
    },
    {
      name: "Connect on the connect port",
      make: (s: Servers) => ({
        client: createClient(
          Health,
          createConnectTransport({ baseUrl: s.connect.url, httpVersion: "2" }),
        ),
        close: () => {},
      }),
    },
  ];

  it.each(clients)("Check, List and NOT_FOUND ($name)", async ({ make }) => {
    const { client, close } = make(servers);
    try {
      expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
      expect((await client.check({ service: TokenService.typeName })).status).toBe(
        ServingStatus.SERVING,
      );
      expect(await rejection(client.check({ service: "nope.v1.Nope" }))).toEqual({
        code: Code.NotFound,
        message: 'unknown service "nope.v1.Nope"',
      });
      const list = await client.list({});
      expect(Object.keys(list.statuses).sort()).toEqual(["", TokenService.typeName]);
      expect(list.statuses[TokenService.typeName]?.status).toBe(ServingStatus.SERVING);
    } finally {
      close();
    }
  });

  it.each(clients)(
    "Watch: SERVICE_UNKNOWN without closing, then each change ($name)",
    async ({ make }) => {
      const { client, close } = make(servers);
      try {
        const watch = client.watch({ service: "later.v1.Later" })[Symbol.asyncIterator]();
        expect((await watch.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
        servers.health.set("later.v1.Later", ServingStatus.SERVING);
        expect((await watch.next()).value?.status).toBe(ServingStatus.SERVING);
        servers.health.set("later.v1.Later", ServingStatus.NOT_SERVING);
        expect((await watch.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
        await watch.return?.();
      } finally {
        close();
      }
    },
  );
});
