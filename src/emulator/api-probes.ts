import { authorize } from "./access-token-check.js";
import { type ApiRoute, tokenOwner } from "./api-request.js";
import { fail, ok } from "./errors.js";
import type { MeteredPath } from "./types.js";

/** Sample addresses in WeChat's published ranges; fixed so answers are stable. */
const CALLBACK_IPS = ["101.226.62.77", "101.226.62.78", "101.226.103.61", "183.3.234.103"];
const API_DOMAIN_IPS = ["101.89.47.18", "101.91.34.103", "109.244.145.77", "183.47.101.192"];

/**
 * `GET /cgi-bin/getcallbackip` and `GET /cgi-bin/get_api_domain_ip` (R22):
 * token check (R7–R10), then the API's own daily counter (getcallbackip
 * unmetered, get_api_domain_ip 1000 by default) → `{"ip_list":[…]}`.
 */
function probeRoute(path: MeteredPath, ips: readonly string[]): ApiRoute {
  return {
    method: "GET",
    identify: tokenOwner,
    handle(req, state) {
      const auth = authorize(req, state);
      if (!auth.ok) return auth.result;
      const { appid } = auth.token;
      const now = state.now();
      const over = state.quota.exceeded(appid, path, now);
      if (over) return fail(over);
      state.quota.consume(appid, path, now);
      return ok({ ip_list: [...ips] });
    },
  };
}

export const callbackIpRoute = probeRoute("/cgi-bin/getcallbackip", CALLBACK_IPS);
export const apiDomainIpRoute = probeRoute("/cgi-bin/get_api_domain_ip", API_DOMAIN_IPS);
