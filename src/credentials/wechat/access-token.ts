import type { CredentialKindSpec, FetchContext, FetchedCredential } from "../../core/kind.js";
import "./client.js";
import { wechatErrcodes } from "./errcodes.js";

/** Consecutive allowed force refreshes must be at least this far apart (WeChat: 30 s). */
const FORCE_REFRESH_GAP_MS = 30_000;

/** WeChat keeps a replaced access token working this long after the next fetch (facts R7). */
const ROTATION_OVERLAP_MS = 300_000;

/**
 * The account's interface token: /cgi-bin/token (classic: every fetch issues
 * a new token and retires the previous one 5 minutes later) or
 * /cgi-bin/stable_token (stable: the same token until its last 5 minutes).
 */
export const accessToken: CredentialKindSpec = {
  name: "access_token",
  protoNumber: 1,
  accountTypes: ["official_account", "mini_program"],
  subject: "none",
  proactive: true,
  rotation: {
    overlapMs: ROTATION_OVERLAP_MS,
    onEveryFetch: (account) => account.tokenMode === "classic",
    // "invalid or not latest" / "invalid access_token": not 42001, which only says expired.
    supersededErrcodes: [40001, 40014],
  },
  // A stable token asked for too early comes back unchanged: converge on its rotation window.
  sameValueRetry: "converge",
  // Below WeChat's limits (facts §1-§3): /cgi-bin/token allows 2000 a day to
  // an official account (10000 to a mini program: raise it per app);
  // stable_token 500000 a day; force refreshes are 20 a day, all of them.
  endpoints: [
    { name: "/cgi-bin/token", segment: "token", budget: 1800 },
    { name: "/cgi-bin/stable_token", segment: "stable_token", budget: 400_000 },
    {
      name: "force_refresh",
      segment: "force_refresh",
      budget: 20,
      gap: { ms: FORCE_REFRESH_GAP_MS, refusal: "force_gap" },
    },
  ],
  errcodes: wechatErrcodes,
  margins: (account, s) => ({
    refreshMarginMs: account.tokenMode === "stable" ? s.stableMarginMs : s.marginMs,
    minRemainingMs: s.minRemainingMs,
  }),
  forceRefusal: (account) =>
    account.tokenMode === "stable"
      ? undefined
      : `app '${account.id}' uses classic tokens, which rotate on every fetch; ` +
        "call InvalidateToken with its current value instead of a force refresh",
  fetch: fetchAccessToken,
};

function fetchAccessToken(ctx: FetchContext): Promise<FetchedCredential> {
  const { account, signal, gate } = ctx;
  const client = ctx.upstreams.wechat;
  const credentials = {
    appid: account.appid,
    secret: account.secret.reveal(),
    known: ctx.knownValues(),
  };
  const options = { retries: ctx.retries, signal, purpose: ctx.purpose };
  if (ctx.force) {
    // A force refresh's 45009 is about the 20 forces a day, not normal stable_token calls (§12 C2).
    return gate.call(
      account.id,
      "/cgi-bin/stable_token",
      () => client.forceStableAccessToken(credentials, signal),
      { retries: false, signal, blocks: "force_refresh" },
    );
  }
  return account.tokenMode === "stable"
    ? gate.call(
        account.id,
        "/cgi-bin/stable_token",
        () => client.fetchStableAccessToken(credentials, signal),
        options,
      )
    : gate.call(
        account.id,
        "/cgi-bin/token",
        () => client.fetchAccessToken(credentials, signal),
        options,
      );
}
