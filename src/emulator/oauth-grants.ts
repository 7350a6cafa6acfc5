import { recordLeakCandidate } from "./leak-record.js";
import type { OAuthUser } from "./oauth-codes.js";
import type { OAuthGrantInfo, OAuthTarget } from "./oauth-types.js";
import { mintTokenValue } from "./token-format.js";

/** A user access token (R34). Kept forever, so a value is never reissued. */
export interface UserToken {
  readonly value: string;
  readonly appid: string;
  readonly openid: string;
  readonly issuedAt: number;
  /** Moved to now + lifetime by a refresh while the token works (R35). */
  expiresAt: number;
  /** Voided by a password change (R35, §12 C7). */
  deadAt: number | undefined;
}

/** One exchanged code: its refresh token and the access token it keeps alive. */
export interface Grant {
  readonly appid: string;
  readonly user: OAuthUser;
  readonly refreshToken: string;
  readonly refreshIssuedAt: number;
  /** Never extended (R35); the expire hook can only move it earlier. */
  refreshExpiresAt: number;
  /** When the refresh token was voided, and what a refresh answers after that. */
  voidedAt: number | undefined;
  voidErrcode: 40030 | 42007;
  access: UserToken;
  refreshes: number;
}

export type RefreshVerdict =
  | { readonly ok: true; readonly grant: Grant }
  | { readonly ok: false; readonly errcode: number };

/**
 * Web OAuth grants by refresh token and user access tokens by value
 * (R34–R36). Validity intervals are half-open, like the basic tokens'.
 * Grants of the same user are independent: a second authorization does not
 * end the first (emulator choice; WeChat does not say).
 */
export class OAuthGrants {
  readonly #byRefresh = new Map<string, Grant>();
  readonly #byAccess = new Map<string, UserToken>();
  /** Numbers the values (`<n>_…`) so test logs tell them apart. */
  #serial = 0;

  /** A new grant for a code just exchanged (R34). */
  issue(appid: string, user: OAuthUser, now: number, lifetimeMs: number, refreshTtlMs: number) {
    const access = this.#mintAccess(appid, user.openid, now, lifetimeMs);
    const refreshToken = this.#freshValue();
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("refresh_token", refreshToken);
    const grant: Grant = {
      appid,
      user,
      refreshToken,
      refreshIssuedAt: now,
      refreshExpiresAt: now + refreshTtlMs,
      voidedAt: undefined,
      voidErrcode: 40030,
      access,
      refreshes: 0,
    };
    this.#byRefresh.set(refreshToken, grant);
    return grant;
  }

  /**
   * `/sns/oauth2/refresh_token` for `appid` (R35): unknown or another
   * account's → 40030; voided → 40030 (hook) or 42007 (password change);
   * expired → 42002 (whichever of voiding and expiry came first decides).
   * Then the access token, if it still works, keeps its value and lives
   * until now + lifetime; otherwise a new one is issued. The refresh
   * token's own expiry never moves.
   */
  refresh(value: string, appid: string, now: number, lifetimeMs: number): RefreshVerdict {
    const grant = this.#byRefresh.get(value);
    if (!grant || grant.appid !== appid) return { ok: false, errcode: 40030 };
    const errcode = refreshErrcode(grant, now);
    if (errcode !== 0) return { ok: false, errcode };
    if (accessErrcode(grant.access, now) === 0) grant.access.expiresAt = now + lifetimeMs;
    else grant.access = this.#mintAccess(appid, grant.user.openid, now, lifetimeMs);
    grant.refreshes += 1;
    return { ok: true, grant };
  }

  /**
   * `/sns/auth` (R36): unknown → 40001; past its expiry (when that came
   * before any voiding) → 42001; voided → 40001; another user's openid →
   * 40003; else 0.
   */
  check(accessToken: string, openid: string | undefined, now: number): number {
    const token = this.#byAccess.get(accessToken);
    if (!token) return 40001;
    const errcode = accessErrcode(token, now);
    if (errcode !== 0) return errcode;
    return openid === token.openid ? 0 : 40003;
  }

  /** The account an access token belongs to (for counters and faults). */
  ownerOf(accessToken: string): string | undefined {
    return this.#byAccess.get(accessToken)?.appid;
  }

  /** The grants of `appid` that `target` names, oldest first. */
  find(appid: string, target: OAuthTarget): Grant[] {
    return [...this.#byRefresh.values()].filter(
      (g) =>
        g.appid === appid &&
        (target.refreshToken !== undefined
          ? g.refreshToken === target.refreshToken
          : g.user.openid === target.openid),
    );
  }

  /** The refresh token stops working at `now` with 42002, unless it already expired. */
  expire(grant: Grant, now: number): void {
    grant.refreshExpiresAt = Math.min(grant.refreshExpiresAt, now);
  }

  /**
   * The refresh token stops working at `now` with `errcode` (40030 for the
   * hook, 42007 for a password change), unless it already was voided. A
   * password change voids the access token too (§12 C7).
   */
  voidRefresh(grant: Grant, now: number, errcode: 40030 | 42007): void {
    if (grant.voidedAt === undefined) {
      grant.voidedAt = now;
      grant.voidErrcode = errcode;
    }
    if (errcode === 42007) killAccess(grant.access, now);
  }

  /** Every grant of a removed account dies (40030, and 40001 on /sns/auth). */
  revokeApp(appid: string, now: number): void {
    for (const grant of this.#byRefresh.values()) {
      if (grant.appid !== appid) continue;
      this.voidRefresh(grant, now, 40030);
      killAccess(grant.access, now);
    }
  }

  describe(grant: Grant, now: number): OAuthGrantInfo {
    const { user, access } = grant;
    return {
      appid: grant.appid,
      openid: user.openid,
      scope: user.scope,
      ...(user.unionid === undefined ? {} : { unionid: user.unionid }),
      snapshot: user.snapshot,
      accessToken: access.value,
      accessTokenIssuedAt: access.issuedAt,
      accessTokenExpiresAt: access.expiresAt,
      accessTokenErrcode: accessErrcode(access, now),
      refreshToken: grant.refreshToken,
      refreshTokenIssuedAt: grant.refreshIssuedAt,
      refreshTokenExpiresAt: grant.refreshExpiresAt,
      refreshTokenErrcode: refreshErrcode(grant, now),
      refreshes: grant.refreshes,
    };
  }

  clear(): void {
    this.#byRefresh.clear();
    this.#byAccess.clear();
  }

  #mintAccess(appid: string, openid: string, now: number, lifetimeMs: number): UserToken {
    const value = this.#freshValue();
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("access_token", value);
    const token: UserToken = {
      value,
      appid,
      openid,
      issuedAt: now,
      expiresAt: now + lifetimeMs,
      deadAt: undefined,
    };
    this.#byAccess.set(value, token);
    return token;
  }

  /** A value in the basic tokens' shape (R3) that neither map holds. */
  #freshValue(): string {
    this.#serial += 1;
    let value = mintTokenValue(this.#serial);
    while (this.#byAccess.has(value) || this.#byRefresh.has(value)) {
      value = mintTokenValue(this.#serial);
    }
    return value;
  }
}

function killAccess(token: UserToken, now: number): void {
  token.deadAt = Math.min(token.deadAt ?? Number.POSITIVE_INFINITY, now);
}

/** 0 while the access token works; else 42001 (expired first) or 40001 (voided first). */
function accessErrcode(token: UserToken, now: number): number {
  const expired = now >= token.expiresAt;
  const dead = token.deadAt !== undefined && now >= token.deadAt;
  if (!expired && !dead) return 0;
  const diedFirst = token.deadAt !== undefined && token.deadAt < token.expiresAt;
  return expired && !(dead && diedFirst) ? 42001 : 40001;
}

/** 0 while the refresh token works; else 42002 (expired first) or its void errcode. */
function refreshErrcode(grant: Grant, now: number): number {
  const expired = now >= grant.refreshExpiresAt;
  const voided = grant.voidedAt !== undefined && now >= grant.voidedAt;
  if (!expired && !voided) return 0;
  const voidedFirst = grant.voidedAt !== undefined && grant.voidedAt < grant.refreshExpiresAt;
  return expired && !(voided && voidedFirst) ? 42002 : grant.voidErrcode;
}
