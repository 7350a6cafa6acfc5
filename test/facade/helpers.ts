import { createHash } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import {
  type EmulatedApp,
  type EmulatedBroker,
  type EmulatedWecomApp,
  startEmulatedBroker,
} from "../../src/emulated-broker.js";
import type { EmulatorOptions } from "../../src/emulator/index.js";
import type { Logger } from "../../src/shared/logger.js";
import { recordLeakCandidate } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";

/** Apps of the façade tests: a classic official account and a mini program on stable tokens. */
export const SHOP = {
  id: "shop",
  appid: "wx00000000facade01",
  secret: "shopAppSecretFacade0001abcdefghij",
} as const;
export const MINI = {
  id: "mini",
  appid: "wx00000000facade02",
  secret: "miniAppSecretFacade0002abcdefghij",
  tokenMode: "stable",
  brokerType: "mini_program",
} as const satisfies EmulatedApp;

/** API keys of the configured clients (recorded for the leak scan). */
export const KEYS = {
  /** orders: shop only, get and invalidate. */
  orders: "facade-orders-key-0123456789abcdefghijklmnop",
  /** tickets: shop's jsapi ticket only. */
  tickets: "facade-tickets-key-0123456789abcdefghijklmno",
  /** ops: every app, get and admin (may force a stable token). */
  ops: "facade-ops-key-0123456789abcdefghijklmnopqrstu",
} as const;
for (const key of Object.values(KEYS)) recordLeakCandidate("secret", key);

const sha = (key: string) => createHash("sha256").update(key).digest("hex");

/** The clients every façade test broker has. */
export const CLIENTS = [
  {
    id: "orders",
    apiKeySha256: sha(KEYS.orders),
    apps: ["shop"],
    permissions: ["get", "invalidate"],
  },
  {
    id: "tickets",
    apiKeySha256: sha(KEYS.tickets),
    apps: ["shop"],
    kinds: ["jsapi_ticket"],
    permissions: ["get"],
  },
  {
    id: "ops",
    apiKeySha256: sha(KEYS.ops),
    apps: ["*"],
    userTokenApps: ["*"],
    permissions: ["get", "admin", "invalidate", "oauth"],
  },
];

export interface FacadeBroker extends EmulatedBroker {
  /** Where the façade answers. */
  readonly url: string;
  /** GET `path` with `params` on the façade; the JSON answer. */
  get(
    path: string,
    params: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<WxBody>;
  /** POST `body` as JSON to `path` on the façade. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<WxBody>;
  /** A Connect client of TokenService as `ops`: the same credentials over RPC. */
  readonly tokens: ReturnType<typeof createClient<typeof TokenService>>;
  /** Calls of `endpoint` the emulator (WeChat) answered for an appid. */
  calls(endpoint: string, appid?: string): number;
}

export type WxBody = Record<string, unknown> & { errcode?: number; errmsg?: string };

export async function startFacadeBroker(o: {
  logger: Logger;
  audit?: Logger;
  config?: Record<string, unknown>;
  apps?: EmulatedApp[];
  wecomApps?: EmulatedWecomApp[];
  emulator?: Omit<EmulatorOptions, "apps" | "clock">;
  fetch?: typeof fetch;
}): Promise<FacadeBroker> {
  const b = await startEmulatedBroker(
    {
      apps: o.apps ?? [SHOP, MINI],
      ...(o.wecomApps ? { wecomApps: o.wecomApps } : {}),
      ...(o.emulator ? { emulator: o.emulator } : {}),
      config: {
        ...o.config,
        security: { clients: CLIENTS, ...(o.config?.security as object | undefined) },
      },
    },
    {
      logger: o.logger,
      // The audit stream goes to stderr by default: a sink of its own keeps test output readable.
      audit: o.audit ?? logSink().logger,
      ...(o.fetch ? { fetch: o.fetch } : {}),
    },
  );
  const url = b.broker.facadeUrl ?? b.broker.connect.url;
  const tokens = createClient(
    TokenService,
    createConnectTransport({
      baseUrl: b.broker.connect.url,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${KEYS.ops}`);
          return next(req);
        },
      ],
    }),
  );
  return {
    ...b,
    url,
    tokens,
    calls: (endpoint, appid) => b.emulator.control.callCount(endpoint, appid),
    async get(path, params, headers = {}) {
      const res = await fetch(`${url}${path}?${new URLSearchParams(params)}`, { headers });
      return (await res.json()) as WxBody;
    },
    async post(path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return (await res.json()) as WxBody;
    },
  };
}

/** The query of `/cgi-bin/token` for `app` with `secret`. */
export function tokenQuery(app: { appid: string }, secret: string): Record<string, string> {
  return { grant_type: "client_credential", appid: app.appid, secret };
}
