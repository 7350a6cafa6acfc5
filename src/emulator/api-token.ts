import { type ApiRoute, queryParam } from "./api-request.js";
import { checkCredentials } from "./credentials.js";
import { fail, ok } from "./errors.js";

const PATH = "/cgi-bin/token";

/**
 * `GET /cgi-bin/token?grant_type=client_credential&appid&secret` (R4–R11).
 * Every successful call issues a new token (R6); the previous one keeps
 * working for the grace period and the one before it dies (R7, R8). Only
 * successful calls use the daily quota unless `countFailedCalls` (R5).
 */
export const tokenRoute: ApiRoute = {
  method: "GET",
  identify: (req) => queryParam(req, "appid"),
  handle(req, state) {
    const check = checkCredentials(state, {
      grantType: queryParam(req, "grant_type"),
      appid: queryParam(req, "appid"),
      secret: queryParam(req, "secret"),
      ip: req.ip,
    });
    if (!check.ok) {
      if (check.app) state.chargeFailure(check.app.appid, PATH, check.errcode);
      return fail(check.errcode, check.errmsg);
    }
    const { appid } = check.app;
    const now = state.now();
    const over = state.quota.exceeded(appid, PATH, now);
    if (over) return fail(over);
    const token = state.slots.rotate(appid, "classic", now, state.config.tokenLifetimeMs);
    state.quota.consume(appid, PATH, now);
    return ok({ access_token: token.value, expires_in: state.config.tokenLifetimeMs / 1000 });
  },
};
