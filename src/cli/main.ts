import { parseArgs } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError } from "../config/config.js";
import { hashApiKey } from "../security/index.js";
import { clearQuotaCommand, forceRefreshCommand, statusCommand } from "./admin-commands.js";
import { getCommand, invalidateCommand, watchCommand } from "./client-commands.js";
import { API_KEY_ENV, ConnectionFlagError, connectionFrom } from "./connection.js";
import { demo } from "./demo.js";
import { runEmulator } from "./emulator-command.js";
import { serve } from "./serve.js";

const USAGE = `token-broker: the central WeChat token server

Usage:
  token-broker serve --config FILE          run the broker (or set TOKEN_BROKER_CONFIG)
  token-broker demo [--grpc HOST:PORT] [--connect HOST:PORT] [--token-lifetime SECONDS]
                                            in-memory store + built-in WeChat emulator, app "demo"
  token-broker emulator [--host H] [--port N] [--app APPID:SECRET ...] [--token-lifetime SECONDS]
                                            the WeChat credential API emulator alone
  token-broker get        --app ID [--kind KIND] [--addr HOST:PORT] [--reveal]
  token-broker watch      --app ID [--kind KIND] [--addr HOST:PORT] [--reveal]
  token-broker invalidate --app ID --value VALUE [--errcode N] [--kind KIND] [--addr HOST:PORT]
  token-broker status [--app ID] [--addr HOST:PORT]         credentials, quota, circuits, alerts
  token-broker force-refresh --app ID --reason TEXT          a stable token leaked: new one now (audited)
  token-broker clear-quota   --app ID --reason TEXT          WeChat clear_quota/v2 after 45009 (audited)
  token-broker hash-key < key-file                            SHA-256 of an API key, for security.clients

KIND is access_token (default), jsapi_ticket or wx_card_ticket. --addr defaults to
127.0.0.1:50051. get/watch print the credential's fingerprint; --reveal adds its value.

Connecting (get, watch, invalidate, status, force-refresh, clear-quota):
  --api-key-file FILE   send the API key in FILE as authorization: Bearer (or set ${API_KEY_ENV});
                        there is no --api-key flag: shell history and ps would keep the key
  --tls                 connect over TLS (implied by --ca and --cert)
  --ca FILE             PEM CA bundle to verify the broker's certificate (default: system CAs)
  --cert FILE --key FILE  client certificate and key (mutual TLS)
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return;
  }
  if (rest.some((arg) => arg === "--api-key" || arg.startsWith("--api-key="))) {
    throw new UsageError(
      `there is no --api-key flag: a key on the command line stays in shell history and the process list; use --api-key-file FILE or ${API_KEY_ENV}`,
    );
  }
  const { values } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      grpc: { type: "string", default: process.env.TOKEN_BROKER_GRPC_LISTEN ?? "127.0.0.1:50051" },
      connect: {
        type: "string",
        default: process.env.TOKEN_BROKER_CONNECT_LISTEN ?? "127.0.0.1:8080",
      },
      "token-lifetime": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "9001" },
      app: { type: "string", multiple: true, default: [] },
      kind: { type: "string", default: "access_token" },
      addr: { type: "string", default: "127.0.0.1:50051" },
      reveal: { type: "boolean", default: false },
      value: { type: "string" },
      reason: { type: "string" },
      errcode: { type: "string", default: "0" },
      timeout: { type: "string", default: "10000" },
      "api-key-file": { type: "string" },
      tls: { type: "boolean", default: false },
      ca: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const connection = () =>
    connectionFrom(values, process.env, (message) =>
      process.stderr.write(`token-broker: ${message}\n`),
    );
  const client = () => ({
    ...connection(),
    app: single(values.app, "--app"),
    kind: values.kind,
    reveal: values.reveal,
    timeoutMs: int(values.timeout, "--timeout"),
  });
  switch (values.help ? "help" : command) {
    case "serve": {
      const config = values.config ?? process.env.TOKEN_BROKER_CONFIG;
      if (!config) throw new UsageError("serve needs --config FILE (or TOKEN_BROKER_CONFIG)");
      return serve(config);
    }
    case "demo":
      return demo({
        grpc: values.grpc,
        connect: values.connect,
        tokenLifetimeSeconds: int(values["token-lifetime"] ?? "120", "--token-lifetime"),
      });
    case "emulator":
      return runEmulator({
        host: values.host,
        port: int(values.port, "--port"),
        apps: values.app,
        tokenLifetimeSeconds: int(values["token-lifetime"] ?? "7200", "--token-lifetime"),
      });
    case "get":
      return getCommand(client());
    case "watch":
      return watchCommand(client());
    case "invalidate": {
      if (!values.value)
        throw new UsageError("invalidate needs --value (the credential WeChat rejected)");
      return invalidateCommand({
        ...client(),
        value: values.value,
        errcode: int(values.errcode, "--errcode"),
      });
    }
    case "status":
      return statusCommand({
        ...connection(),
        timeoutMs: int(values.timeout, "--timeout"),
        app: values.app[0] ?? "",
      });
    case "force-refresh":
    case "clear-quota": {
      if (!values.reason)
        throw new UsageError(`${command} needs --reason (it is written to the audit log)`);
      const o = {
        ...connection(),
        timeoutMs: int(values.timeout, "--timeout"),
        app: single(values.app, "--app"),
        reason: values.reason,
      };
      return command === "force-refresh" ? forceRefreshCommand(o) : clearQuotaCommand(o);
    }
    case "hash-key": {
      // From stdin, so the key never lands in shell history or the process list.
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const key = Buffer.concat(chunks).toString("utf8").trim();
      if (!key) throw new UsageError("hash-key reads the API key from standard input");
      process.stdout.write(`${hashApiKey(key)}\n`);
      return;
    }
    case "help":
    case undefined:
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

class UsageError extends Error {}

function int(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag} expects a whole number, got '${v}'`);
  return n;
}

function single(list: string[], flag: string): string {
  if (list.length !== 1 || !list[0]) throw new UsageError(`${flag} is required, once`);
  return list[0];
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConnectionFlagError) {
    process.stderr.write(`token-broker: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof UsageError || (err instanceof TypeError && "code" in err)) {
    process.stderr.write(`token-broker: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`token-broker: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ConnectError) {
    process.stderr.write(`token-broker: ${Code[err.code]}: ${err.rawMessage}\n`);
    process.exit(1);
  }
  process.stderr.write(`token-broker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
