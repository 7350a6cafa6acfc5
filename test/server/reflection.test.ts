import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  create,
  createFileRegistry,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { reflectionRegistrations } from "../../src/server/index.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";
import { type Servers, startServers } from "./harness.js";

const run = promisify(execFile);

type Request = MessageInitShape<typeof v1.ServerReflectionRequestSchema>;
type Response = v1.ServerReflectionResponse;

/** One reflection stream with the raw grpc-js client; v1alpha answers are read as v1 (same wire format). */
async function reflect(
  url: string,
  version: "v1" | "v1alpha",
  requests: Request[],
): Promise<Response[]> {
  const out: Response[] = [];
  if (version === "v1") {
    const client = createGrpcJsClient(v1.ServerReflection, url);
    for await (const res of client.serverReflectionInfo(requests)) out.push(res);
    client.close();
  } else {
    const client = createGrpcJsClient(v1alpha.ServerReflection, url);
    const alpha = requests.map((r) => create(v1alpha.ServerReflectionRequestSchema, r as object));
    for await (const res of client.serverReflectionInfo(alpha)) {
      out.push(
        fromBinary(
          v1.ServerReflectionResponseSchema,
          toBinary(v1alpha.ServerReflectionResponseSchema, res),
        ),
      );
    }
    client.close();
  }
  return out;
}

function fileNames(res: Response | undefined): string[] {
  if (res?.messageResponse.case !== "fileDescriptorResponse") return [];
  return res.messageResponse.value.fileDescriptorProto.map(
    (b) => fromBinary(FileDescriptorProtoSchema, b).name,
  );
}

function errorCode(res: Response | undefined): number | undefined {
  return res?.messageResponse.case === "errorResponse"
    ? res.messageResponse.value.errorCode
    : undefined;
}

const SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "tokenbroker.v1.TokenService",
];

describe("server reflection", () => {
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers();
  });
  afterAll(async () => {
    await servers.close();
  });

  const combos = (["grpc", "connect"] as const).flatMap((listener) =>
    (["v1", "v1alpha"] as const).map((version) => ({ listener, version })),
  );

  it.each(combos)(
    "answers every request kind ($version on the $listener port)",
    async ({ listener, version }) => {
      const res = await reflect(servers[listener].url, version, [
        { host: "h", messageRequest: { case: "listServices", value: "" } },
        { messageRequest: { case: "fileContainingSymbol", value: "tokenbroker.v1.TokenService" } },
        {
          messageRequest: {
            case: "fileContainingSymbol",
            value: "tokenbroker.v1.TokenService.GetToken",
          },
        },
        {
          messageRequest: {
            case: "fileContainingSymbol",
            value: "grpc.health.v1.HealthCheckResponse.ServingStatus",
          },
        },
        {
          messageRequest: {
            case: "fileContainingSymbol",
            value: "tokenbroker.v1.TOKEN_KIND_ACCESS_TOKEN",
          },
        },
        { messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" } },
        { messageRequest: { case: "fileContainingSymbol", value: "nope.v1.Nope" } },
        { messageRequest: { case: "fileByFilename", value: "nope.proto" } },
        { messageRequest: { case: "allExtensionNumbersOfType", value: "tokenbroker.v1.Token" } },
        { messageRequest: { case: "allExtensionNumbersOfType", value: "nope.v1.Nope" } },
        {
          messageRequest: {
            case: "fileContainingExtension",
            value: { containingType: "tokenbroker.v1.Token", extensionNumber: 100 },
          },
        },
      ]);
      expect(res).toHaveLength(11);
      const [
        list,
        svc,
        method,
        nested,
        enumValue,
        byName,
        noSymbol,
        noFile,
        extNums,
        extNumsUnknown,
        noExt,
      ] = res;
      expect(list?.validHost).toBe("h");
      expect(list?.originalRequest?.messageRequest.case).toBe("listServices");
      expect(
        list?.messageResponse.case === "listServicesResponse" &&
          list.messageResponse.value.service.map((s) => s.name),
      ).toEqual(SERVICES);
      expect(fileNames(svc)).toEqual([
        "tokenbroker/v1/token_service.proto",
        "google/protobuf/timestamp.proto",
      ]);
      expect(fileNames(method)).toEqual(fileNames(svc));
      expect(fileNames(nested)).toEqual(["grpc/health/v1/health.proto"]);
      expect(fileNames(enumValue)).toEqual(fileNames(svc));
      expect(fileNames(byName)).toEqual(["google/protobuf/timestamp.proto"]);
      expect(errorCode(noSymbol)).toBe(5);
      expect(errorCode(noFile)).toBe(5);
      expect(extNums?.messageResponse).toEqual({
        case: "allExtensionNumbersResponse",
        value: expect.objectContaining({
          baseTypeName: "tokenbroker.v1.Token",
          extensionNumber: [],
        }),
      });
      expect(errorCode(extNumsUnknown)).toBe(5);
      expect(errorCode(noExt)).toBe(5);
    },
  );

  // `npx buf curl` resolves the schema by reflection, as grpcurl or Postman would.
  const bufCurl = (...args: string[]) =>
    run(
      "npx",
      ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args],
      {
        timeout: 15_000,
      },
    );

  it("serves buf curl on both ports: list services and call methods by reflection", async () => {
    const results = await Promise.all(
      (["grpc", "connect"] as const).flatMap((listener) => {
        const url = servers[listener].url;
        return [
          bufCurl("--list-services", url),
          bufCurl(
            "-d",
            '{"appId":"demo","kind":"TOKEN_KIND_ACCESS_TOKEN"}',
            `${url}/tokenbroker.v1.TokenService/GetToken`,
          ),
          bufCurl("-d", '{"service":""}', `${url}/grpc.health.v1.Health/Check`),
          bufCurl(
            "--reflect-protocol",
            "grpc-v1alpha",
            "-d",
            '{"appId":"alpha"}',
            `${url}/tokenbroker.v1.TokenService/GetToken`,
          ),
        ];
      }),
    );
    for (let i = 0; i < results.length; i += 4) {
      const [list, token, health, alpha] = results.slice(i, i + 4).map((r) => r?.stdout ?? "");
      expect(list?.trim().split("\n").sort()).toEqual(SERVICES);
      expect(JSON.parse(token ?? "")).toMatchObject({
        token: { appId: "demo", value: "token-of-demo-v1" },
      });
      expect(JSON.parse(health ?? "")).toEqual({ status: "SERVING" });
      expect(JSON.parse(alpha ?? "")).toMatchObject({ token: { appId: "alpha" } });
    }
  });
});

describe("reflection of extensions", () => {
  // A file extending google.protobuf.FieldOptions, built at run time.
  const extFile = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "ext/v1/ext.proto",
      package: "ext.v1",
      dependency: ["google/protobuf/descriptor.proto"],
      syntax: "proto3",
      extension: [
        {
          name: "sensitive",
          number: 50_001,
          label: FieldDescriptorProto_Label.OPTIONAL,
          type: FieldDescriptorProto_Type.BOOL,
          extendee: ".google.protobuf.FieldOptions",
        },
      ],
    }),
    (name) =>
      name === "google/protobuf/descriptor.proto" ? file_google_protobuf_descriptor : undefined,
  ).getFile("ext/v1/ext.proto");

  it("finds extensions by extendee and number, and lists the numbers of a type", async () => {
    if (!extFile) throw new Error("test file did not build");
    const transport = createRouterTransport((router) => {
      for (const reg of reflectionRegistrations([extFile])) router.service(reg.service, reg.impl);
    });
    const client = createClient(v1.ServerReflection, transport);
    const requests: Request[] = [
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.FieldOptions", extensionNumber: 50_001 },
        },
      },
      {
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "google.protobuf.FieldOptions",
        },
      },
      { messageRequest: { case: "fileContainingSymbol", value: "ext.v1.sensitive" } },
    ];
    const res: Response[] = [];
    async function* send() {
      yield* requests;
    }
    for await (const r of client.serverReflectionInfo(send())) res.push(r);
    expect(fileNames(res[0])).toEqual(["ext/v1/ext.proto", "google/protobuf/descriptor.proto"]);
    expect(
      res[1]?.messageResponse.case === "allExtensionNumbersResponse" &&
        res[1].messageResponse.value.extensionNumber,
    ).toEqual([50_001]);
    expect(fileNames(res[2])).toEqual(fileNames(res[0]));
  });
});
