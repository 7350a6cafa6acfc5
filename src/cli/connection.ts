import { readFileSync } from "node:fs";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { isLoopbackHost } from "../shared/loopback.js";

/** The environment variable the CLI reads an API key from when no --api-key-file is given. */
export const API_KEY_ENV = "TOKEN_BROKER_API_KEY";

/** How a client command reaches the broker's gRPC listener. */
export interface ConnectionOptions {
  /** host:port. */
  addr: string;
  /** Sent as `authorization: Bearer <key>`. */
  apiKey?: string;
  /** https instead of http; implied by `ca` or `cert`. */
  tls: boolean;
  /** PEM bundle to verify the broker's certificate with (default: the system's CAs). */
  ca?: Buffer;
  /** Client certificate and key (mutual TLS). */
  cert?: Buffer;
  key?: Buffer;
}

/** A problem with the connection flags, reported like a usage error. */
export class ConnectionFlagError extends Error {}

/** The flags as parsed (file names, not contents). */
export interface ConnectionFlags {
  addr: string;
  "api-key-file"?: string;
  tls: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Reads the files the flags name and the key from the environment. Keys come
 * only from a file or TOKEN_BROKER_API_KEY, never from the command line,
 * where shell history and the process list would keep them.
 */
export function connectionFrom(
  flags: ConnectionFlags,
  env: Readonly<Record<string, string | undefined>>,
  warn: (message: string) => void,
): ConnectionOptions {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new ConnectionFlagError(
      "--cert and --key go together (the client certificate and its key)",
    );
  }
  const apiKey =
    flags["api-key-file"] !== undefined
      ? readKey(flags["api-key-file"])
      : env[API_KEY_ENV]?.trim() || undefined;
  const o: ConnectionOptions = {
    addr: flags.addr,
    tls: flags.tls || flags.ca !== undefined || flags.cert !== undefined,
    ...(apiKey ? { apiKey } : {}),
    ...(flags.ca ? { ca: read(flags.ca, "--ca") } : {}),
    ...(flags.cert ? { cert: read(flags.cert, "--cert") } : {}),
    ...(flags.key ? { key: read(flags.key, "--key") } : {}),
  };
  const host = flags.addr.replace(/:\d+$/, "");
  if (o.apiKey && !o.tls && !isLoopbackHost(host)) {
    warn(
      `warning: sending the API key to ${flags.addr} without TLS: anyone on the path can read it; add --tls (and --ca)`,
    );
  }
  return o;
}

function read(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConnectionFlagError(`cannot read ${flag} ${file}: ${code}`);
  }
}

function readKey(file: string): string {
  const key = read(file, "--api-key-file").toString("utf8").trim();
  if (key === "") throw new ConnectionFlagError(`--api-key-file ${file} is empty`);
  return key;
}

/** A gRPC transport to the broker with the connection's TLS and key. */
export function brokerTransport(o: ConnectionOptions): Transport {
  const bearer: Interceptor = (next) => (req) => {
    if (o.apiKey) req.header.set("authorization", `Bearer ${o.apiKey}`);
    return next(req);
  };
  return createGrpcTransport({
    baseUrl: `${o.tls ? "https" : "http"}://${o.addr}`,
    interceptors: [bearer],
    ...(o.tls
      ? {
          nodeOptions: {
            ...(o.ca ? { ca: o.ca } : {}),
            ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
          },
        }
      : {}),
  });
}
