import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { brokerTransport, type ConnectionOptions } from "./connection.js";

export interface OAuthOptions extends ConnectionOptions {
  app: string;
  timeoutMs: number;
}

function oauth(o: OAuthOptions) {
  return createClient(OAuthService, brokerTransport(o));
}

/**
 * `token-broker oauth exchange`: trades a user's authorization code for the
 * user's grant (once per code, as OAuthService does for every caller) and
 * prints who the user is and the token's fingerprint; its value only with
 * --reveal. The refresh token never leaves the broker.
 */
export async function exchangeCommand(
  o: OAuthOptions & { code: string; reveal: boolean },
): Promise<void> {
  const res = await oauth(o).exchangeCode(
    { appId: o.app, code: o.code },
    { timeoutMs: o.timeoutMs },
  );
  const token = res.token;
  console.log(
    JSON.stringify({
      app: o.app,
      openid: res.openid,
      unionid: res.unionid || undefined,
      scope: res.scope,
      snapshot: res.snapshotUser,
      version: token?.version.toString(),
      fingerprint: token?.fingerprint,
      expiresAt: token?.expiresAt ? timestampDate(token.expiresAt).toISOString() : undefined,
      refreshExpiresAt: res.refreshExpiresAt
        ? timestampDate(res.refreshExpiresAt).toISOString()
        : undefined,
      ...(o.reveal ? { value: token?.value } : {}),
    }),
  );
}

/** `token-broker oauth forget`: deletes a user's grant (the user logged out or revoked the app). */
export async function forgetCommand(o: OAuthOptions & { openid: string }): Promise<void> {
  const res = await oauth(o).forgetUser(
    { appId: o.app, openid: o.openid },
    { timeoutMs: o.timeoutMs },
  );
  console.log(JSON.stringify({ app: o.app, openid: o.openid, forgotten: res.forgotten }));
}
