import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type RunningBroker, startBroker } from "../../src/broker.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { FakeClock } from "./fake-clock.js";
import { logSink } from "./log-sink.js";

/** An official account whose users authorize through the broker. */
export const OAUTH_APP = {
  id: "web",
  appid: "wx000000000000ol01",
  secret: "web-secret-oauth-leaks-0001",
} as const;

/** The store and encryption part of a broker config: what the grants CLI reads too. */
export function redisStoreConfig(redisUrl: string, prefix: string, keyEnv: string) {
  return {
    store: { type: "redis", url: redisUrl, prefix },
    security: { encryptionKeys: [{ id: "k1", key: { env: keyEnv } }] },
  };
}

export interface OAuthRedisBroker {
  readonly broker: RunningBroker;
  readonly emulator: Emulator;
  readonly clock: FakeClock;
  /** The operational log and the audit stream, as JSON lines. */
  readonly logs: ReturnType<typeof logSink>;
  readonly audit: ReturnType<typeof logSink>;
  readonly oauth: ReturnType<typeof createClient<typeof OAuthService>>;
  readonly tokens: ReturnType<typeof createClient<typeof TokenService>>;
  /** Plays the user authorizing the app: a fresh code. */
  mint(openid: string, unionid?: string): string;
  close(): Promise<void>;
}

/**
 * The production broker (startBroker) on a real Redis with encryption keys,
 * in front of the emulator, both on one fake clock: the OAuth flow as a
 * deployment runs it. `key` is 32 random bytes, base64.
 */
export async function startOAuthRedisBroker(o: {
  redisUrl: string;
  prefix: string;
  key: string;
  /** The fake clock's start (default: its fixed start); Date.now() for grants a real-time tool reads. */
  startMs?: number;
}): Promise<OAuthRedisBroker> {
  const clock = new FakeClock(o.startMs);
  const emulator = createEmulator({
    clock,
    apps: [{ appid: OAUTH_APP.appid, secret: OAUTH_APP.secret }],
  });
  const { url } = await emulator.listen(0, "127.0.0.1");
  const logs = logSink();
  const audit = logSink();
  const config = parseConfig(
    {
      listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0" },
      upstream: { baseUrl: url, timeoutMs: 2000 },
      ...redisStoreConfig(o.redisUrl, o.prefix, "BROKER_KEY"),
      apps: [{ id: OAUTH_APP.id, appid: OAUTH_APP.appid, secret: { env: "WEB_SECRET" } }],
    },
    { env: { BROKER_KEY: o.key, WEB_SECRET: OAUTH_APP.secret }, readFile: () => "" },
  );
  let broker: RunningBroker;
  try {
    broker = await startBroker(config, { logger: logs.logger, audit: audit.logger, clock });
  } catch (err) {
    await emulator.close();
    throw err;
  }
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${broker.grpc.port}` });
  return {
    broker,
    emulator,
    clock,
    logs,
    audit,
    oauth: createClient(OAuthService, transport),
    tokens: createClient(TokenService, transport),
    mint: (openid, unionid) =>
      emulator.control.authorizeUser(OAUTH_APP.appid, {
        openid,
        scope: unionid ? "snsapi_userinfo" : "snsapi_base",
        ...(unionid ? { unionid } : {}),
      }).code,
    async close() {
      await broker.close();
      await emulator.close();
    },
  };
}
