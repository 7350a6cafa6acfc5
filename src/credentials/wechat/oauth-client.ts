import { UpstreamError } from "../../core/upstream-error.js";
import { oauthErrcodes } from "./oauth-errcodes.js";
import { createWechatHttp, type WechatClientOptions } from "./wechat-http.js";

/** A user's grant as /sns/oauth2/access_token or /sns/oauth2/refresh_token returned it. */
export interface UserGrantFetched {
  readonly value: string;
  readonly expiresInSeconds: number;
  readonly refreshToken: string;
  readonly openid: string;
  readonly scope: string;
  readonly unionid?: string;
  /** is_snapshotuser = 1: a snapshot-page virtual user. */
  readonly snapshotUser: boolean;
}

/** The web OAuth (网页授权) calls of an official account. */
export interface OAuthClient {
  /** GET /sns/oauth2/access_token: trades a single-use code for the user's grant. */
  exchangeCode(
    app: { appid: string; secret: string },
    code: string,
    signal?: AbortSignal,
  ): Promise<UserGrantFetched>;
  /** GET /sns/oauth2/refresh_token (no secret): a new or extended user token. */
  refresh(appid: string, refreshToken: string, signal?: AbortSignal): Promise<UserGrantFetched>;
}

export const EXCHANGE_ENDPOINT = "/sns/oauth2/access_token";
export const REFRESH_ENDPOINT = "/sns/oauth2/refresh_token";

export function createOAuthClient(options: WechatClientOptions): OAuthClient {
  const { call, credential } = createWechatHttp(options, oauthErrcodes);

  function grant(endpoint: string, record: Record<string, unknown>): UserGrantFetched {
    const { value, expiresInSeconds } = credential(endpoint, record, "access_token");
    const text = (field: string): string | undefined => {
      const v = record[field];
      return typeof v === "string" && v !== "" ? v : undefined;
    };
    const refreshToken = text("refresh_token");
    const openid = text("openid");
    if (refreshToken === undefined || openid === undefined) {
      throw new UpstreamError(endpoint, {
        kind: "malformed",
        problem: refreshToken === undefined ? "has no refresh_token" : "has no openid",
      });
    }
    const unionid = text("unionid");
    return {
      value,
      expiresInSeconds,
      refreshToken,
      openid,
      scope: text("scope") ?? "",
      ...(unionid === undefined ? {} : { unionid }),
      snapshotUser: record.is_snapshotuser === 1,
    };
  }

  return {
    async exchangeCode(app, code, signal) {
      const record = await call(
        EXCHANGE_ENDPOINT,
        {
          method: "GET",
          query: {
            appid: app.appid,
            secret: app.secret,
            code,
            grant_type: "authorization_code",
          },
        },
        signal,
        // The code is as secret as the AppSecret: never echoed into the broker.
        { secrets: [app.secret, code], credentials: [] },
      );
      return grant(EXCHANGE_ENDPOINT, record);
    },
    async refresh(appid, refreshToken, signal) {
      const record = await call(
        REFRESH_ENDPOINT,
        {
          method: "GET",
          query: { appid, grant_type: "refresh_token", refresh_token: refreshToken },
        },
        signal,
        { secrets: [refreshToken], credentials: [] },
      );
      return grant(REFRESH_ENDPOINT, record);
    },
  };
}
