import { randomBytes } from "node:crypto";
import { startEmulatedBroker } from "../emulated-broker.js";
import { createAuditLogger, createLogger } from "../shared/logger.js";
import { isLoopbackHost } from "../shared/loopback.js";
import { stopOnSignals } from "./lifecycle.js";

export interface DemoOptions {
  grpc: string;
  connect: string;
  /** Token lifetime the built-in emulator issues, short so refreshes are visible. */
  tokenLifetimeSeconds: number;
}

const DEMO_APPID = "wxd000000000000de0";
/** The demo's WeCom app: a corp with one self-built app (agent). */
const DEMO_CORPID = "wwd000000000000de0";
const DEMO_AGENTID = 1000002;

/**
 * `token-broker demo`: the broker on its embedded defaults (in-memory store)
 * with the built-in WeChat emulator as upstream and two apps: `demo`, an
 * official account, and `demo-wecom`, a WeCom app. Loopback only; every log
 * line carries mode=demo.
 */
export async function demo(options: DemoOptions): Promise<void> {
  for (const address of [options.grpc, options.connect]) assertLoopback(address);
  const logger = createLogger({ base: { mode: "demo" } });
  // A fresh random secret per run: the demo has nothing worth protecting, and
  // nothing to copy into a real deployment.
  const secret = randomBytes(16).toString("hex");
  const wecomSecret = randomBytes(16).toString("hex");
  const {
    broker,
    emulatorUrl: url,
    close,
  } = await startEmulatedBroker(
    {
      apps: [{ id: "demo", appid: DEMO_APPID, secret, type: "official_account", prefetch: true }],
      wecomApps: [
        {
          id: "demo-wecom",
          corpid: DEMO_CORPID,
          agentid: String(DEMO_AGENTID),
          secret: wecomSecret,
          prefetch: true,
        },
      ],
      config: {
        listen: { grpc: options.grpc, connect: options.connect },
        shutdown: { graceMs: 2000 },
      },
      emulator: {
        tokenLifetimeSeconds: options.tokenLifetimeSeconds,
        ticketLifetimeSeconds: options.tokenLifetimeSeconds,
        wecom: {
          corps: [{ corpid: DEMO_CORPID, apps: [{ agentid: DEMO_AGENTID, secret: wecomSecret }] }],
          tokenLifetimeSeconds: options.tokenLifetimeSeconds,
          ticketLifetimeSeconds: options.tokenLifetimeSeconds,
        },
        logger: logger.child({ component: "emulator" }),
      },
    },
    { logger, audit: createAuditLogger("stderr", { mode: "demo" }) },
  );
  logger.warn(
    { emulator: url, tokenLifetimeSeconds: options.tokenLifetimeSeconds },
    "DEMO MODE: in-memory store, built-in WeChat emulator as upstream, loopback only. Not for production.",
  );
  process.stderr.write(banner(broker.grpc.url, broker.connect.url, url));
  stopOnSignals(close, logger);
}

function assertLoopback(address: string): void {
  if (!isLoopbackHost(address.replace(/:\d+$/, ""))) {
    throw new Error(`demo mode listens on loopback only; '${address}' is not a loopback address`);
  }
}

function banner(grpc: string, connect: string, emulator: string): string {
  const grpcHost = grpc.replace(/^https?:\/\//, "");
  return `
  ┌─ wechat-token-broker ── DEMO MODE (not for production) ─────────────
  │ gRPC:     ${grpc}   (grpc-js, with reflection and health)
  │ Connect:  ${connect}   (Connect JSON, gRPC-Web, gRPC over HTTP/1.1 + h2c)
  │ Upstream: built-in WeChat emulator at ${emulator}
  │
  │ Try:
  │   curl -s -H 'Content-Type: application/json' -d '{"appId":"demo","kind":"TOKEN_KIND_ACCESS_TOKEN"}' \\
  │        ${connect}/tokenbroker.v1.TokenService/GetToken
  │   npx buf curl --protocol grpc --http2-prior-knowledge --list-methods ${grpc}
  │   node bin/token-broker.js watch --addr ${grpcHost} --app demo
  │
  │ WeCom app "demo-wecom" (corp ${DEMO_CORPID}, agent ${DEMO_AGENTID}):
  │   node bin/token-broker.js get --addr ${grpcHost} --app demo-wecom --kind wecom_agent_ticket
  └─────────────────────────────────────────────────────────────────────
`;
}
