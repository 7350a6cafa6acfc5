import { sleep, systemClock } from "../shared/clock.js";
import { clearQuotaRoute, clearQuotaV2Route } from "./api-clear-quota.js";
import { apiDomainIpRoute, callbackIpRoute } from "./api-probes.js";
import { quotaClearRoute, quotaGetRoute } from "./api-quota.js";
import type { ApiRequest, ApiRoute } from "./api-request.js";
import { snsAccessTokenRoute, snsAuthRoute, snsRefreshTokenRoute } from "./api-sns.js";
import { stableTokenRoute } from "./api-stable-token.js";
import { ticketRoute } from "./api-ticket.js";
import { tokenRoute } from "./api-token.js";
import { WECOM_ROUTES } from "./api-wecom.js";
import type { FaultAction } from "./control-types.js";
import { recordOutcome } from "./counters.js";
import { fail, notInWhitelistMessage } from "./errors.js";
import { type Reply, wechatError, wechatJson } from "./reply.js";
import type { EmulatorState } from "./state.js";
import { wecomErrmsg } from "./wecom-errors.js";

/** The WeChat API paths the emulator serves. */
export const API_ROUTES: ReadonlyMap<string, ApiRoute> = new Map([
  ["/cgi-bin/token", tokenRoute],
  ["/cgi-bin/stable_token", stableTokenRoute],
  ["/cgi-bin/ticket/getticket", ticketRoute],
  ["/cgi-bin/getcallbackip", callbackIpRoute],
  ["/cgi-bin/get_api_domain_ip", apiDomainIpRoute],
  ["/cgi-bin/openapi/quota/get", quotaGetRoute],
  ["/cgi-bin/openapi/quota/clear", quotaClearRoute],
  ["/cgi-bin/clear_quota", clearQuotaRoute],
  ["/cgi-bin/clear_quota/v2", clearQuotaV2Route],
  ["/sns/oauth2/access_token", snsAccessTokenRoute],
  ["/sns/oauth2/refresh_token", snsRefreshTokenRoute],
  ["/sns/auth", snsAuthRoute],
  ...WECOM_ROUTES,
]);

/**
 * Answers one request to a WeChat API path:
 * 1. An unknown path gets HTTP 200 `40066 invalid url` and is not counted
 *    (emulator choice).
 * 2. The call is counted for (path, account) before anything else.
 * 3. Injected faults (R43) run next: latency waits in real time (so HTTP
 *    clients see it, whatever clock the emulator uses); errcode, http and
 *    hang answers replace the handler, so they use no quota.
 * 4. The wrong method gets 43001 (GET APIs) or 43002 (POST APIs), R4, R12.
 * 5. The handler's result becomes the R1/R2 body.
 *
 * `signal` aborts when the emulator closes; a pending latency then rejects.
 */
export async function dispatchApi(
  req: ApiRequest,
  state: EmulatorState,
  signal: AbortSignal,
): Promise<Reply> {
  const route = API_ROUTES.get(req.path);
  if (!route) return wechatError(40066, state.now());
  const appid = route.identify(req, state);
  const counter = state.counters.call(req.path, appid, route.identifyApp?.(req, state));
  const error = (errcode: number, errmsg?: string): Reply =>
    route.family === "wecom"
      ? wechatJson({ errcode, errmsg: wecomErrmsg(errcode, req.ip, state.now(), errmsg) })
      : wechatError(errcode, state.now(), errmsg);

  const actions = state.faults.match(req.path, appid);
  if (actions.length > 0) counter.faults += 1;
  const delay = actions.reduce((ms, a) => ms + (a.type === "latency" ? a.ms : 0), 0);
  if (delay > 0) await sleep(systemClock, delay, signal);
  const terminal = actions.find(
    (a): a is Exclude<FaultAction, { type: "latency" }> => a.type !== "latency",
  );
  if (terminal) {
    state.config.logger.debug({ path: req.path, appid, fault: terminal.type }, "injected fault");
    switch (terminal.type) {
      case "hang":
        return { hang: true };
      case "http":
        recordOutcome(counter, `http:${terminal.status}`);
        return {
          status: terminal.status,
          contentType: "text/plain; charset=utf-8",
          body: terminal.body ?? `${terminal.status} injected by the emulator`,
        };
      case "errcode": {
        recordOutcome(counter, terminal.errcode);
        const errmsg =
          terminal.errmsg ??
          (terminal.errcode === 40164 ? notInWhitelistMessage(req.ip) : undefined);
        return error(terminal.errcode, errmsg);
      }
    }
  }

  const result =
    req.method === route.method
      ? route.handle(req, state)
      : fail(route.method === "GET" ? 43001 : 43002);
  recordOutcome(counter, result.ok ? undefined : result.errcode);
  state.config.logger.debug(
    { path: req.path, appid, errcode: result.ok ? 0 : result.errcode },
    "wechat api call",
  );
  return result.ok ? wechatJson(result.body) : error(result.errcode, result.errmsg);
}
