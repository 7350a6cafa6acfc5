import type { Limit } from "./types.js";

/** The web OAuth scopes the emulator grants (R34). */
export type OAuthScope = "snsapi_base" | "snsapi_userinfo";

/** Who authorizes, as a test plays it (R33, R34). */
export interface OAuthUserSpec {
  openid: string;
  scope: OAuthScope;
  /** Returned by the exchange only when scope is `snsapi_userinfo` (R34). */
  unionid?: string;
  /** A snapshot-page virtual user: the exchange adds `is_snapshotuser: 1` (R34). */
  snapshot?: boolean;
}

/** A freshly minted code. Includes the value: this is a test hook. */
export interface OAuthCodeInfo {
  code: string;
  appid: string;
  openid: string;
  scope: OAuthScope;
  issuedAt: number;
  /** issuedAt + code life: from this instant on the code gets 40029 (or 42003). */
  expiresAt: number;
}

/** Which grants a control call acts on: give exactly one of the two. */
export interface OAuthTarget {
  /** Every grant of this user of the account. */
  openid?: string;
  /** The one grant holding this refresh token. */
  refreshToken?: string;
}

/**
 * One exchanged code: a refresh token and the user access token it keeps
 * alive. Includes the values: this is a test hook.
 */
export interface OAuthGrantInfo {
  appid: string;
  openid: string;
  scope: OAuthScope;
  unionid?: string;
  snapshot: boolean;
  accessToken: string;
  accessTokenIssuedAt: number;
  /** Moved to now + lifetime by a refresh while the token still works (R35). */
  accessTokenExpiresAt: number;
  /** What `/sns/auth` answers for this token with the right openid right now (0 = valid). */
  accessTokenErrcode: number;
  refreshToken: string;
  refreshTokenIssuedAt: number;
  /** Never extended by a refresh (R35); only the expire hook moves it earlier. */
  refreshTokenExpiresAt: number;
  /** What `/sns/oauth2/refresh_token` would answer right now (0 = it would work). */
  refreshTokenErrcode: number;
  /** Successful refreshes so far. */
  refreshes: number;
}

/** An account's effective web OAuth settings (R33, R35, R37). */
export interface OAuthSettings {
  codeTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  minuteLimit: Limit;
}

/**
 * Per-account overrides; an absent field is left alone. A TTL of `null`
 * returns to the configured or type default; a `minuteLimit` of `null` means
 * unmetered, as in `setMinuteLimit`.
 */
export interface OAuthSettingsPatch {
  codeTtlSeconds?: number | null;
  refreshTokenTtlSeconds?: number | null;
  minuteLimit?: Limit;
}
