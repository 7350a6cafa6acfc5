import {
  Code,
  ConnectError,
  createClient,
  createContextKey,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  type RunningServer,
  registration,
  startConnectServer,
  startGrpcServer,
} from "../../src/server/index.js";
import { requestMessage } from "../../src/server/request-message.js";
import { captureLogs } from "./harness.js";

/** What the interceptors and the handler saw, in order. */
const seen: string[] = [];
const tagKey = createContextKey<string | undefined>(undefined, { description: "test tag" });

/** Outermost: sees the request message, tags the context, adds a response header, hears stream ends. */
const observe: Interceptor = (next) => async (req) => {
  const { appId } = requestMessage(req) as { appId: string };
  seen.push(`observe ${req.method.name} stream=${req.stream} app=${appId}`);
  req.contextValues.set(tagKey, `tag-${appId}`);
  const res = await next(req);
  res.header.set("x-intercepted", "yes");
  if (!res.stream) return res;
  const source = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* source;
        seen.push(`${req.method.name} ended`);
      } catch (err) {
        seen.push(`${req.method.name} failed: ${ConnectError.from(err).code}`);
        throw err;
      }
    })(),
  };
};

/** Refuses a call that asks to be refused, or fails like a bug would. */
const gate: Interceptor = (next) => (req) => {
  if (req.header.get("x-deny") !== null) {
    return Promise.reject(new ConnectError("refused by the gate", Code.PermissionDenied));
  }
  if (req.header.get("x-bug") !== null) return Promise.reject(new Error("a bug in an interceptor"));
  return next(req);
};

const impl: ServiceImpl<typeof TokenService> = {
  getToken(req, ctx) {
    seen.push(`handler GetToken ${ctx.values.get(tagKey)}`);
    return { token: { appId: req.appId, value: ctx.values.get(tagKey) ?? "" } };
  },
  invalidateToken() {
    throw new ConnectError("not used", Code.Unimplemented);
  },
  ackToken() {
    throw new ConnectError("not used", Code.Unimplemented);
  },
  async *watchToken(req, ctx) {
    seen.push(`handler WatchToken ${ctx.values.get(tagKey)}`);
    for (const version of [1n, 2n]) {
      yield { token: { appId: req.appId, value: ctx.values.get(tagKey) ?? "", version } };
    }
  },
};

const get = { appId: "shop", kind: TokenKind.ACCESS_TOKEN };

describe.each(["grpc", "connect"] as const)(
  "a registration's interceptors on the %s listener",
  (listener) => {
    let server: RunningServer;
    beforeAll(async () => {
      const options = {
        host: "127.0.0.1",
        port: 0,
        services: [registration(TokenService, impl, [observe, gate])],
        logger: captureLogs().logger,
      };
      server =
        listener === "grpc" ? await startGrpcServer(options) : await startConnectServer(options);
    });
    afterAll(async () => {
      await server.close({ graceMs: 0 });
    });
    beforeEach(() => {
      seen.length = 0;
    });

    // The gRPC port speaks gRPC only; the Connect port also the Connect protocol.
    const transports = () => [
      createGrpcTransport({ baseUrl: server.url }),
      ...(listener === "connect"
        ? [createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })]
        : []),
    ];

    it("run around a unary call: the request message, a context value for the handler, a response header", async () => {
      for (const transport of transports()) {
        seen.length = 0;
        let header: string | null = null;
        const res = await createClient(TokenService, transport).getToken(get, {
          onHeader: (h) => {
            header = h.get("x-intercepted");
          },
        });
        expect(res.token?.value).toBe("tag-shop");
        expect(header).toBe("yes");
        expect(seen).toEqual([
          "observe GetToken stream=false app=shop",
          "handler GetToken tag-shop",
        ]);
      }
    });

    it("run around a server stream: its one request message, the context value, the stream's end", async () => {
      for (const transport of transports()) {
        seen.length = 0;
        let header: string | null = null;
        const values: string[] = [];
        for await (const m of createClient(TokenService, transport).watchToken(get, {
          onHeader: (h) => {
            header = h.get("x-intercepted");
          },
        })) {
          values.push(`${m.token?.value} v${m.token?.version}`);
        }
        expect(values).toEqual(["tag-shop v1", "tag-shop v2"]);
        expect(header).toBe("yes");
        expect(seen).toEqual([
          "observe WatchToken stream=true app=shop",
          "handler WatchToken tag-shop",
          "WatchToken ended",
        ]);
      }
    });

    it("refuse a call before its handler runs, with the interceptor's code and message", async () => {
      for (const transport of transports()) {
        seen.length = 0;
        const client = createClient(TokenService, transport);
        const headers = { "x-deny": "1" };
        const unary = await client.getToken(get, { headers }).then(
          () => undefined,
          (err: unknown) => ConnectError.from(err),
        );
        expect([unary?.code, unary?.rawMessage]).toEqual([
          Code.PermissionDenied,
          "refused by the gate",
        ]);
        const stream = await (async () => {
          for await (const _ of client.watchToken(get, { headers })) {
            // nothing arrives
          }
        })().then(
          () => undefined,
          (err: unknown) => ConnectError.from(err),
        );
        expect([stream?.code, stream?.rawMessage]).toEqual([
          Code.PermissionDenied,
          "refused by the gate",
        ]);
        expect(seen.filter((line) => line.startsWith("handler"))).toEqual([]);
      }
    });

    it("map an interceptor's own failure like a handler's: INTERNAL, no detail on the wire", async () => {
      for (const transport of transports()) {
        const err = await createClient(TokenService, transport)
          .getToken(get, { headers: { "x-bug": "1" } })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(err?.code).toBe(Code.Internal);
        expect(err?.rawMessage).not.toContain("a bug in an interceptor");
      }
    });
  },
);

describe("registration", () => {
  it("refuses interceptors on a service with client- or bidi-streaming methods", async () => {
    const { ServerReflection } = await import("../../gen/grpc/reflection/v1/reflection_pb.js");
    expect(() =>
      registration(ServerReflection, {} as ServiceImpl<typeof ServerReflection>, [gate]),
    ).toThrow(/cannot guard grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo/);
    expect(() =>
      registration(ServerReflection, {} as ServiceImpl<typeof ServerReflection>),
    ).not.toThrow();
  });
});
