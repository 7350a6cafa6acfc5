import { describeKey } from "../../core/credential.js";
import type { CredentialKindSpec, FetchContext, FetchedCredential } from "../../core/kind.js";
import { UpstreamError } from "../../core/upstream-error.js";
import { ReauthorizeError } from "../../shared/errors.js";
import "./client.js";
import { decodeGrantState, encodeGrantState } from "./grant-state.js";
import { EXCHANGE_ENDPOINT, REFRESH_ENDPOINT } from "./oauth-client.js";
import { oauthErrcodes } from "./oauth-errcodes.js";

/**
 * A user's web OAuth access token (网页授权, facts §7), one per app and
 * openid. The grant comes from OAuthService.ExchangeCode; after that the
 * token is renewed on demand with the refresh token in its sealed state:
 * millions of users, so nothing is scheduled. A refresh before expiry
 * returns the same token with a later expiry, after it a new one (nothing
 * rotates). The refresh token lives 30 days from the authorization and is
 * never extended: `renewableUntil` carries its end.
 */
export const userAccessToken: CredentialKindSpec = {
  name: "user_access_token",
  protoNumber: 20,
  accountTypes: ["official_account"],
  subject: "openid",
  proactive: false,
  sameValueRetry: "at_end",
  // Per-minute limits only (50,000 a minute per app), no daily quota: unmetered.
  endpoints: [
    { name: EXCHANGE_ENDPOINT, segment: "sns_exchange", budget: null },
    { name: REFRESH_ENDPOINT, segment: "sns_refresh", budget: null },
  ],
  errcodes: oauthErrcodes,
  margins: (_account, s) => ({ refreshMarginMs: s.marginMs, minRemainingMs: s.minRemainingMs }),
  fetch: refreshUserToken,
};

async function refreshUserToken(ctx: FetchContext): Promise<FetchedCredential> {
  const { key, account, current, signal } = ctx;
  const grant = decodeGrantState(current?.state);
  const details = { app_id: key.appId, kind: key.kind, subject: key.subject ?? "" };
  if (current === undefined || grant === undefined) {
    throw new ReauthorizeError(
      `the broker holds no grant for the ${describeKey(key)}: the user has not authorized this app ` +
        "through the broker (OAuthService.ExchangeCode), or the grant was forgotten or void; " +
        "send the user through WeChat's authorization",
      details,
    );
  }
  if (current.renewableUntil !== undefined && current.renewableUntil <= ctx.now()) {
    throw new ReauthorizeError(
      `the refresh token of the ${describeKey(key)} expired at ${new Date(current.renewableUntil).toISOString()} ` +
        "(WeChat never extends it): send the user through WeChat's authorization again",
      details,
    );
  }
  const fetched = await ctx.gate.call(
    account.id,
    REFRESH_ENDPOINT,
    () => ctx.upstreams.oauth.refresh(account.appid, grant.refreshToken, signal),
    { retries: ctx.retries, signal, purpose: ctx.purpose },
  );
  if (fetched.openid !== key.subject) {
    throw new UpstreamError(REFRESH_ENDPOINT, {
      kind: "malformed",
      problem: "names another openid than the grant's",
    });
  }
  return {
    value: fetched.value,
    expiresInSeconds: fetched.expiresInSeconds,
    // Whatever refresh token WeChat returns is kept; its expiry is the grant's.
    state: encodeGrantState({
      ...grant,
      refreshToken: fetched.refreshToken,
      scope: fetched.scope || grant.scope,
    }),
  };
}
