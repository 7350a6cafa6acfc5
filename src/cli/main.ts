import { parseArgs } from "node:util";
import { hashApiKey } from "../security/index.js";
import { clearQuotaCommand, forceRefreshCommand, statusCommand } from "./admin-commands.js";
import { getCommand, invalidateCommand, watchCommand } from "./client-commands.js";
import { API_KEY_ENV, connectionFrom } from "./connection.js";
import { demo } from "./demo.js";
import { runEmulator } from "./emulator-command.js";
import { reportFailure, UsageError } from "./failure.js";
import { exportGrants, importGrants } from "./grants-commands.js";
import { healthCommand } from "./health-command.js";
import { exchangeCommand, forgetCommand } from "./oauth-commands.js";
import { PASSPHRASE_ENV, readPassphrase } from "./passphrase.js";
import { serve } from "./serve.js";
import { USAGE } from "./usage.js";

/** Commands with subcommands: `oauth exchange`, `grants export`, … */
const GROUPS: Readonly<Record<string, readonly string[]>> = {
  oauth: ["exchange", "forget"],
  grants: ["export", "import"],
};

async function main(argv: string[]): Promise<void> {
  const [command, rest] = commandOf(argv);
  if (command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return;
  }
  refuseSecretFlags(rest);
  const { values } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      "watch-config": { type: "string" },
      service: { type: "string", default: "" },
      grpc: { type: "string", default: process.env.TOKEN_BROKER_GRPC_LISTEN ?? "127.0.0.1:50051" },
      connect: {
        type: "string",
        default: process.env.TOKEN_BROKER_CONNECT_LISTEN ?? "127.0.0.1:8080",
      },
      "token-lifetime": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "9001" },
      app: { type: "string", multiple: true, default: [] },
      "wecom-app": { type: "string", multiple: true, default: [] },
      kind: { type: "string", default: "access_token" },
      subject: { type: "string", default: "" },
      code: { type: "string" },
      openid: { type: "string" },
      out: { type: "string" },
      in: { type: "string" },
      "passphrase-file": { type: "string" },
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
    subject: values.subject,
    reveal: values.reveal,
    timeoutMs: int(values.timeout, "--timeout"),
  });
  switch (values.help ? "help" : command) {
    case "serve": {
      const config = values.config ?? process.env.TOKEN_BROKER_CONFIG;
      if (!config) throw new UsageError("serve needs --config FILE (or TOKEN_BROKER_CONFIG)");
      const watch = values["watch-config"];
      return serve(config, {
        watchIntervalMs: watch === undefined ? 0 : int(watch, "--watch-config") * 1000,
      });
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
        wecomApps: values["wecom-app"],
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
    case "oauth exchange":
    case "oauth forget": {
      const o = {
        ...connection(),
        app: single(values.app, "--app"),
        timeoutMs: int(values.timeout, "--timeout"),
      };
      if (command === "oauth forget")
        return forgetCommand({ ...o, openid: required(values.openid, "--openid") });
      return exchangeCommand({
        ...o,
        code: required(values.code, "--code"),
        reveal: values.reveal,
      });
    }
    case "grants export":
    case "grants import": {
      const action = command === "grants export" ? "export" : "import";
      const o = {
        configPath: required(values.config, "--config"),
        env: process.env,
        passphrase: readPassphrase(values["passphrase-file"], process.env, action),
      };
      return action === "export"
        ? exportGrants({ ...o, out: required(values.out, "--out") })
        : importGrants({ ...o, in: required(values.in, "--in") });
    }
    case "health":
      return healthCommand({
        ...connection(),
        timeoutMs: int(values.timeout, "--timeout"),
        service: values.service,
      });
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
      if (command && GROUPS[command])
        throw new UsageError(`${command} needs one of: ${GROUPS[command].join(", ")}`);
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** The command, joined with its subcommand for the groups, and the rest of the arguments. */
function commandOf(argv: string[]): [string | undefined, string[]] {
  const [command, sub, ...rest] = argv;
  if (command !== undefined && sub !== undefined && GROUPS[command]?.includes(sub))
    return [`${command} ${sub}`, rest];
  return [command, argv.slice(1)];
}

/** Keys and passphrases never come from the command line: shell history and ps keep it. */
function refuseSecretFlags(args: string[]): void {
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  if (has("--api-key"))
    throw new UsageError(
      `there is no --api-key flag: a key on the command line stays in shell history and the process list; use --api-key-file FILE or ${API_KEY_ENV}`,
    );
  if (has("--passphrase"))
    throw new UsageError(
      `there is no --passphrase flag: a passphrase on the command line stays in shell history and the process list; use --passphrase-file FILE or ${PASSPHRASE_ENV}`,
    );
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`${flag} is required`);
  return value;
}

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
  process.exit(reportFailure(err));
});
