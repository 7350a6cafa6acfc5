import type { CredentialKindSpec, FetchContext, FetchedCredential } from "../../core/kind.js";
import { UpstreamError } from "../../core/upstream-error.js";
import type { TicketType } from "./wechat-client.js";
import "./client.js";
import { wechatErrcodes } from "./errcodes.js";

/**
 * A ticket of /cgi-bin/ticket/getticket, fetched with the account's access
 * token. WeChat returns the same ticket until it expires (facts R19), so a
 * ticket is handed out until its last second and a fetch never rotates it.
 */
function ticketKind(name: string, protoNumber: number, type: TicketType): CredentialKindSpec {
  return {
    name,
    protoNumber,
    accountTypes: ["official_account"],
    subject: "none",
    dependsOn: "access_token",
    proactive: true,
    sameValueRetry: "at_end",
    // getticket's quota is unpublished: this budget is a guess on the safe side.
    endpoints: [{ name: "/cgi-bin/ticket/getticket", segment: "getticket", budget: 1000 }],
    errcodes: wechatErrcodes,
    margins: (_account, s) => ({
      refreshMarginMs: s.marginMs,
      minRemainingMs: s.ticketMinRemainingMs,
    }),
    fetch: (ctx) => fetchTicket(ctx, type),
  };
}

/**
 * When WeChat says the access token is stale (40001, 42001, 40014), the token
 * is compare-and-refreshed and the ticket fetch retried once.
 */
async function fetchTicket(ctx: FetchContext, type: TicketType): Promise<FetchedCredential> {
  const { account, signal } = ctx;
  const ticket = (accessToken: string) =>
    ctx.gate.call(
      account.id,
      "/cgi-bin/ticket/getticket",
      () =>
        ctx.upstreams.wechat.fetchTicket(accessToken, type, signal, {
          secrets: [account.secret.reveal()],
          credentials: ctx.knownValues(),
        }),
      { retries: ctx.retries, signal, purpose: ctx.purpose },
    );
  const token = await ctx.parent(signal);
  try {
    return await ticket(token.value);
  } catch (err) {
    if (!(err instanceof UpstreamError) || err.category !== "token") throw err;
    await ctx.reportStaleParent(token.value, err.errcode ?? 0, signal);
    const fresh = await ctx.parent(signal);
    return ticket(fresh.value);
  }
}

/** The JS-SDK ticket (wx.config signatures). */
export const jsapiTicket = ticketKind("jsapi_ticket", 2, "jsapi");

/** The card ticket (needs WeChat's card permission: 48001 otherwise). */
export const wxCardTicket = ticketKind("wx_card_ticket", 3, "wx_card");
