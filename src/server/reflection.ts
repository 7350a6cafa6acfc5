import {
  create,
  type DescFile,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { isLoopbackHost } from "../shared/loopback.js";
import { DescriptorIndex } from "./descriptor-index.js";
import { registration, type ServiceRegistration } from "./registration.js";

type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

/**
 * Whether to serve reflection. It needs no credentials (tools call it before
 * they know the schema) and describes the whole API, AdminService included,
 * so `auto` serves it only when every listener is on loopback.
 */
export function reflectionEnabled(mode: "auto" | "on" | "off", hosts: readonly string[]): boolean {
  return mode === "on" || (mode === "auto" && hosts.every(isLoopbackHost));
}

/**
 * grpc.reflection.v1 and v1alpha ServerReflection (for grpcurl, buf curl,
 * Postman...) over `files` and everything they import. `list_services` lists
 * the services declared in `files` plus the reflection services themselves.
 */
export function reflectionRegistrations(files: readonly DescFile[]): ServiceRegistration[] {
  const index = new DescriptorIndex([
    ...files,
    v1.file_grpc_reflection_v1_reflection,
    v1alpha.file_grpc_reflection_v1alpha_reflection,
  ]);
  const encoded = new Map<string, Uint8Array>();
  const encode = (file: DescFile) => {
    let bytes = encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file.proto.name, bytes);
    }
    return bytes;
  };
  const answer = (req: v1.ServerReflectionRequest): Response => ({
    validHost: req.host,
    originalRequest: req,
    messageResponse: respond(index, encode, req.messageRequest),
  });
  return [
    registration(v1.ServerReflection, {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield answer(req);
      },
    }),
    registration(v1alpha.ServerReflection, {
      // The v1alpha messages are wire-identical to v1: translate through bytes.
      async *serverReflectionInfo(requests) {
        for await (const req of requests) {
          const asV1 = fromBinary(
            v1.ServerReflectionRequestSchema,
            toBinary(v1alpha.ServerReflectionRequestSchema, req),
          );
          const res = toBinary(
            v1.ServerReflectionResponseSchema,
            create(v1.ServerReflectionResponseSchema, answer(asV1)),
          );
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, res);
        }
      },
    }),
  ];
}

function respond(
  index: DescriptorIndex,
  encode: (file: DescFile) => Uint8Array,
  request: v1.ServerReflectionRequest["messageRequest"],
): Response["messageResponse"] {
  const files = (file: DescFile | undefined, what: string): Response["messageResponse"] =>
    file
      ? {
          case: "fileDescriptorResponse",
          value: { fileDescriptorProto: index.withDependencies(file).map(encode) },
        }
      : notFound(what);
  switch (request.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.services.map((name) => ({ name })) },
      };
    case "fileByFilename":
      return files(index.file(request.value), `file "${request.value}"`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(request.value), `symbol "${request.value}"`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = request.value;
      return files(
        index.fileContainingExtension(containingType, extensionNumber),
        `extension ${extensionNumber} of "${containingType}"`,
      );
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(request.value);
      if (!numbers) return notFound(`message type "${request.value}"`);
      return {
        case: "allExtensionNumbersResponse",
        value: { baseTypeName: request.value, extensionNumber: numbers },
      };
    }
    case undefined:
      return {
        case: "errorResponse",
        value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" },
      };
  }
}

function notFound(what: string): Response["messageResponse"] {
  return {
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  };
}
