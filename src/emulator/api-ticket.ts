import { authorize } from "./access-token-check.js";
import { type ApiRoute, tokenOwner } from "./api-request.js";
import { fail, OK_ENVELOPE, ok } from "./errors.js";
import { isTicketType } from "./tickets.js";

const PATH = "/cgi-bin/ticket/getticket";

/**
 * `GET /cgi-bin/ticket/getticket?access_token&type=jsapi|wx_card` (R19–R21).
 * The token is checked first (41001 / 40001 / 42001), then `type` (missing
 * or unknown → `unknownTicketTypeErrcode`, default 40097), then the daily
 * quota (unmetered by default). The same ticket comes back for its whole
 * lifetime and `expires_in` is always the full lifetime (7200), as observed.
 */
export const ticketRoute: ApiRoute = {
  method: "GET",
  identify: tokenOwner,
  handle(req, state) {
    const auth = authorize(req, state);
    if (!auth.ok) return auth.result;
    const { appid } = auth.token;
    const type = req.query.get("type");
    if (!isTicketType(type)) {
      const errcode = state.config.unknownTicketTypeErrcode;
      state.chargeFailure(appid, PATH, errcode);
      return fail(errcode);
    }
    const now = state.now();
    const over = state.quota.exceeded(appid, PATH, now);
    if (over) return fail(over);
    const ticket = state.tickets.fetch(appid, type, now);
    state.quota.consume(appid, PATH, now);
    return ok({ ...OK_ENVELOPE, ticket, expires_in: state.config.ticketLifetimeMs / 1000 });
  },
};
