import type { CredentialKindSpec, FetchContext, FetchedCredential } from "../../core/kind.js";
import { UpstreamError } from "../../core/upstream-error.js";
import { FailedPreconditionError } from "../../shared/errors.js";
import "./client.js";
import { wecomErrcodes } from "./errcodes.js";
import { AGENT_TICKET_ENDPOINT, CORP_TICKET_ENDPOINT, GETTOKEN_ENDPOINT } from "./wecom-client.js";

/**
 * A WeCom app's token (gettoken with the corp id and the app's own secret).
 * Within its validity WeCom returns the same token, and documents no overlap,
 * so a fetch does not rotate; WeCom may invalidate a token early, which a
 * client reports (40014/42001) and the broker re-fetches. Limits are per
 * minute and hour per corp, not a China day: the ledger counts gettoken per
 * hour, per app and for the corp's apps together, far below WeCom's 10,000 a
 * minute, so that a failing secret never loops toward the 2,000 failed calls
 * an hour that block the corp (facts §6.1).
 */
export const wecomAccessToken: CredentialKindSpec = {
  name: "access_token",
  protoNumber: 1,
  accountTypes: ["wecom"],
  subject: "none",
  proactive: true,
  // The same token comes back until it expires: wait for its end.
  sameValueRetry: "at_end",
  endpoints: [
    {
      name: GETTOKEN_ENDPOINT,
      segment: "wecom_gettoken",
      budget: 60,
      window: { period: "hour", groupBudget: 1000 },
    },
  ],
  errcodes: wecomErrcodes,
  margins: (_account, s) => ({ refreshMarginMs: s.marginMs, minRemainingMs: s.minRemainingMs }),
  forceRefusal: (account) =>
    `app '${account.id}' is a WeCom app: WeCom returns the same token until it expires and has no force refresh; ` +
    "if the token leaked, reset the app's secret in the WeCom admin console and update the broker's copy " +
    "(the next fetch uses it; reload the config)",
  fetch: (ctx) =>
    ctx.gate.call(
      ctx.account.id,
      GETTOKEN_ENDPOINT,
      () =>
        ctx.upstreams.wecom.fetchToken(
          {
            corpid: ctx.account.appid,
            secret: ctx.account.secret.reveal(),
            known: ctx.knownValues(),
          },
          ctx.signal,
        ),
      { retries: ctx.retries, signal: ctx.signal, purpose: ctx.purpose, group: corpOf(ctx) },
    ),
};

function wecomTicket(
  name: string,
  protoNumber: number,
  which: "corp" | "agent",
): CredentialKindSpec {
  const endpoint = which === "corp" ? CORP_TICKET_ENDPOINT : AGENT_TICKET_ENDPOINT;
  return {
    name,
    protoNumber,
    accountTypes: ["wecom"],
    subject: "none",
    dependsOn: "access_token",
    proactive: true,
    sameValueRetry: "at_end",
    // WeCom: at most 400 ticket fetches an hour per corp and 100 per app,
    // corp and app tickets together (facts §6.2): one meter for both, with
    // budgets kept below those limits.
    endpoints: [
      {
        name: endpoint,
        segment: `wecom_${which}_ticket`,
        budget: 80,
        window: { period: "hour", meter: "wecom_ticket", groupBudget: 320 },
      },
    ],
    errcodes: wecomErrcodes,
    margins: (_account, s) => ({
      refreshMarginMs: s.marginMs,
      minRemainingMs: s.ticketMinRemainingMs,
    }),
    fetch: (ctx) => fetchWecomTicket(ctx, which, endpoint),
  };
}

async function fetchWecomTicket(
  ctx: FetchContext,
  which: "corp" | "agent",
  endpoint: string,
): Promise<FetchedCredential> {
  const { account, signal } = ctx;
  if (which === "agent" && account.agentid === undefined) {
    throw new FailedPreconditionError(
      `app '${account.id}' has no agentid: an agent ticket (wx.agentConfig) belongs to an app; set apps[].agentid`,
    );
  }
  const ticket = (accessToken: string) =>
    ctx.gate.call(
      account.id,
      endpoint,
      () =>
        ctx.upstreams.wecom.fetchTicket(accessToken, which, signal, {
          secrets: [account.secret.reveal()],
          credentials: ctx.knownValues(),
        }),
      { retries: ctx.retries, signal, purpose: ctx.purpose, group: corpOf(ctx) },
    );
  const token = await ctx.parent(signal);
  try {
    return await ticket(token.value);
  } catch (err) {
    if (!(err instanceof UpstreamError) || err.category !== "token") throw err;
    await ctx.reportStaleParent(token.value, err.errcode ?? 0, signal);
    return ticket((await ctx.parent(signal)).value);
  }
}

/** The corp's JS-SDK ticket (wx.config). */
export const wecomJsapiTicket = wecomTicket("jsapi_ticket", 2, "corp");

/** The app's ticket (wx.agentConfig). */
export const wecomAgentTicket = wecomTicket("wecom_agent_ticket", 10, "agent");

/** Whose limits a WeCom app's calls count against with its own: its corp's (all apps of the corp). */
function corpOf(ctx: FetchContext): string {
  return ctx.account.appid;
}
