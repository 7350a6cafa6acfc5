import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  type StringValueSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type RunningServer,
  type ServiceRegistration,
  SHUTDOWN_MESSAGE,
  startConnectServer,
  startGrpcServer,
} from "../../src/server/index.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { captureLogs, eventually, rejection } from "./harness.js";

type S = typeof StringValueSchema;
type KindsService = GenService<{
  unary: { methodKind: "unary"; input: S; output: S };
  server: { methodKind: "server_streaming"; input: S; output: S };
  client: { methodKind: "client_streaming"; input: S; output: S };
  bidi: { methodKind: "bidi_streaming"; input: S; output: S };
}>;

/** A service with every method kind over google.protobuf.StringValue, built at run time. */
function kindsService(): KindsService {
  const method = (name: string, clientStreaming: boolean, serverStreaming: boolean) => ({
    name,
    inputType: ".google.protobuf.StringValue",
    outputType: ".google.protobuf.StringValue",
    clientStreaming,
    serverStreaming,
  });
  const registry = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "kinds/v1/kinds.proto",
      package: "kinds.v1",
      dependency: ["google/protobuf/wrappers.proto"],
      syntax: "proto3",
      service: [
        {
          name: "Kinds",
          method: [
            method("Unary", false, false),
            method("Server", false, true),
            method("Client", true, false),
            method("Bidi", true, true),
          ],
        },
      ],
    }),
    (name) =>
      name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined,
  );
  const service = registry.getService("kinds.v1.Kinds");
  if (!service) throw new Error("kinds.v1.Kinds did not build");
  return service as KindsService;
}

const Kinds = kindsService();
const seen: { signals: AbortSignal[] } = { signals: [] };

/** Unary is left out on purpose: it must answer UNIMPLEMENTED. */
const kindsImpl: Partial<ServiceImpl<KindsService>> = {
  async *server(req) {
    for (const ch of req.value) yield { value: ch };
  },
  async client(reqs, ctx) {
    seen.signals.push(ctx.signal);
    const parts: string[] = [];
    for await (const r of reqs) {
      if (r.value === "fail") throw new ConnectError("no fail allowed", Code.OutOfRange);
      parts.push(r.value);
    }
    return { value: `${parts.join(",")} from ${ctx.requestHeader.get("x-who")}` };
  },
  async *bidi(reqs) {
    for await (const r of reqs) yield { value: r.value.toUpperCase() };
  },
};
const kindsRegistration: ServiceRegistration = {
  service: Kinds,
  impl: kindsImpl as Partial<ServiceImpl<DescService>>,
};

async function* slowly(values: string[], thenHang = false): AsyncGenerator<{ value: string }> {
  for (const value of values) yield { value };
  if (thenHang) await new Promise(() => {});
}

describe.each(["grpc", "connect"] as const)(
  "all four method kinds on the %s listener",
  (listener) => {
    let server: RunningServer;
    beforeEach(async () => {
      seen.signals = [];
      const options = {
        host: "127.0.0.1",
        port: 0,
        services: [kindsRegistration],
        logger: captureLogs().logger,
      };
      server =
        listener === "grpc" ? await startGrpcServer(options) : await startConnectServer(options);
    });
    afterEach(async () => {
      await server.close({ graceMs: 0 });
    });

    it("unary (not implemented) is UNIMPLEMENTED; server streaming streams", async () => {
      const client = createGrpcJsClient(Kinds, server.url);
      try {
        expect((await rejection(client.unary({ value: "x" }))).code).toBe(Code.Unimplemented);
        const out: string[] = [];
        for await (const m of client.server({ value: "abc" })) out.push(m.value);
        expect(out).toEqual(["a", "b", "c"]);
      } finally {
        client.close();
      }
    });

    it("client streaming reads every message; its errors keep their code", async () => {
      const client = createGrpcJsClient(Kinds, server.url);
      try {
        const res = await client.client(slowly(["a", "b", "c"]), {
          metadata: { "x-who": "grpc-js" },
        });
        expect(res.value).toBe("a,b,c from grpc-js");
        expect(await rejection(client.client(slowly(["a", "fail"])))).toEqual({
          code: Code.OutOfRange,
          message: "no fail allowed",
        });
      } finally {
        client.close();
      }
    });

    it("bidi streaming answers each message in order (grpc-js and connect-node clients)", async () => {
      const grpcJs = createGrpcJsClient(Kinds, server.url);
      const connect = createClient(Kinds, createGrpcTransport({ baseUrl: server.url }));
      try {
        const a: string[] = [];
        for await (const m of grpcJs.bidi(slowly(["x", "y", "z"]))) a.push(m.value);
        expect(a).toEqual(["X", "Y", "Z"]);
        const b: string[] = [];
        for await (const m of connect.bidi(slowly(["p", "q"]))) b.push(m.value);
        expect(b).toEqual(["P", "Q"]);
      } finally {
        grpcJs.close();
      }
    });

    it("close ends a client stream still waiting for input with UNAVAILABLE", async () => {
      const client = createGrpcJsClient(Kinds, server.url);
      try {
        const pending = rejection(client.client(slowly(["a"], true)));
        await eventually(() => seen.signals.length === 1);
        await server.close({ graceMs: 2_000 });
        expect(await pending).toEqual({ code: Code.Unavailable, message: SHUTDOWN_MESSAGE });
        expect(seen.signals[0]?.aborted).toBe(true);
      } finally {
        client.close();
      }
    });
  },
);
