import type { FacadeConfig } from "../config/schema/facade.js";
import type { RpcObserver } from "../rpc/interceptors/index.js";
import { compilePolicy, type SecurityPolicy } from "../security/policy.js";
import type { RefusalLog } from "../security/refusal-log.js";
import type { HttpRoutes, ServiceRegistration } from "../server/index.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { AppRegistry } from "../token/app.js";
import type { TokenManager } from "../token/token-manager.js";
import { BrokerCalls } from "./broker-calls.js";
import type { Endpoint, FacadeTools } from "./endpoint-kit.js";
import { type ForwardDeps, forward } from "./forward.js";
import {
  BodyTooLargeError,
  type FacadeRequest,
  facadeRequest,
  type NodeResponse,
  pathOf,
  send,
} from "./http-io.js";
import { FacadeIdentities } from "./identities.js";
import { exchange, refresh } from "./oauth-endpoints.js";
import { RejectionReports } from "./rejection-reports.js";
import { TokenOwners } from "./token-owners.js";
import { stableToken, ticket, token } from "./wechat-endpoints.js";
import { fail, type Reply } from "./wechat-reply.js";
import { agentTicket, corpTicket, gettoken } from "./wecom-endpoints.js";

/** WeChat's credential endpoints, by path. */
const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ["/cgi-bin/token", token],
  ["/cgi-bin/stable_token", stableToken],
  ["/cgi-bin/ticket/getticket", ticket],
  ["/cgi-bin/gettoken", gettoken],
  ["/cgi-bin/get_jsapi_ticket", corpTicket],
  ["/cgi-bin/ticket/get", agentTicket],
  ["/sns/oauth2/access_token", exchange],
  ["/sns/oauth2/refresh_token", refresh],
]);

/** The service name façade requests are counted under (tokenbroker_rpc_handled_total). */
export const FACADE_METRICS_SERVICE = "wechat.Facade";

export interface FacadeDeps {
  readonly config: Pick<FacadeConfig, "appSecrets" | "forward" | "forwardTimeoutMs">;
  /** The broker's registered services: calls run through their interceptors. */
  readonly services: readonly ServiceRegistration[];
  readonly apps: AppRegistry;
  readonly manager: TokenManager;
  /** The same policy the RPC listeners enforce (its API keys, the address allowlist). */
  readonly policy: SecurityPolicy;
  readonly refusals: RefusalLog;
  readonly upstream: { readonly baseUrl: string; readonly wecomBaseUrl?: string | undefined };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  /** Each request: endpoint, outcome ("ok", "errcode_40125", …) and duration. */
  readonly observe?: RpcObserver;
}

/**
 * The WeChat-compatible façade as HTTP routes for a listener (the Connect
 * port, or one of its own): it claims WeChat's API paths (isFacadePath),
 * answers WeChat's credential endpoints with the broker's credentials, and
 * forwards other calls carrying a broker-issued token (forward.ts), or
 * answers them 404 when forwarding is off.
 */
export function createFacade(d: FacadeDeps): HttpRoutes {
  const policy = compilePolicy(d.policy);
  const ids = new FacadeIdentities(policy, d.config.appSecrets);
  const owners = new TokenOwners(d.apps, d.manager, d.clock);
  const calls = new BrokerCalls(d.services);
  const tools: FacadeTools = { calls, ids, owners, apps: d.apps };
  const logger = d.logger.child({ component: "facade" });
  const fwd: ForwardDeps = {
    owners,
    calls,
    ids,
    manager: d.manager,
    policy,
    refusals: d.refusals,
    reports: new RejectionReports(d.clock),
    upstream: {
      wechat: d.upstream.baseUrl,
      wecom: d.upstream.wecomBaseUrl ?? "https://qyapi.weixin.qq.com",
    },
    timeoutMs: d.config.forwardTimeoutMs,
    fetch: d.fetch ?? fetch,
    logger,
  };

  const handle = async (req: FacadeRequest, res: NodeResponse): Promise<void> => {
    const started = d.clock.now();
    const endpoint = ENDPOINTS.get(req.path);
    const name = endpoint ? req.path : d.config.forward ? "forward" : "unknown";
    let outcome: string;
    try {
      if (endpoint) outcome = answer(res, await endpoint(req, tools));
      else if (d.config.forward) outcome = await forward(req, res, fwd);
      else
        outcome = answer(
          res,
          fail(40066, "the token broker serves WeChat's token endpoints only", 404),
        );
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        outcome = answer(res, fail(40097, err.message, 413));
      } else {
        // Never the URL: its query may hold a secret or a token.
        logger.error({ path: req.path, err: (err as Error).message }, "facade: unexpected error");
        outcome = answer(res, fail(-1, "internal error", 500));
      }
    }
    d.observe?.(FACADE_METRICS_SERVICE, name, outcome, (d.clock.now() - started) / 1000);
  };

  return (req, res) => {
    if (!isFacadePath(pathOf(req))) return false;
    void handle(facadeRequest(req, res), res);
    return true;
  };
}

/**
 * The first path segments of WeChat's and WeCom's server APIs (what SDKs
 * build their URLs from). Other paths stay the RPC handler's: its 404 for
 * anything it does not serve is unchanged.
 */
const API_PREFIXES = [
  "/cgi-bin/",
  "/sns/",
  "/wxa/",
  "/wxaapi/",
  "/wxopen/",
  "/card/",
  "/datacube/",
  "/customservice/",
  "/merchant/",
  "/shakearound/",
  "/semantic/",
  "/bizwifi/",
  "/channels/",
  "/product/",
  "/shop/",
  "/union/",
];

/** Paths the façade answers: WeChat's credential endpoints and the rest of WeChat's API paths. */
export function isFacadePath(path: string): boolean {
  return ENDPOINTS.has(path) || API_PREFIXES.some((prefix) => path.startsWith(prefix));
}

function answer(res: NodeResponse, reply: Reply): string {
  send(res, reply);
  const errcode = reply.body.errcode;
  return errcode === undefined || errcode === 0 ? "ok" : `errcode_${String(errcode)}`;
}
