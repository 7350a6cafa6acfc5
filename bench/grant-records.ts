/**
 * Realistic records for the grants benchmark: what a user's grant and an
 * app's access token look like when the broker stores them, with values of
 * WeChat's lengths (facts §1, §7). Deterministic per index, so the parent and
 * the broker child name the same users without sharing a list.
 */
import { createHash, randomBytes } from "node:crypto";
import type { CredentialKey, NewCredential } from "../src/core/credential.js";
import { encodeGrantState } from "../src/credentials/wechat/grant-state.js";

/** The one app the grants belong to (an official account: user tokens are its kind). */
export const GRANTS_APP = {
  id: "grants",
  appid: "wx00000000grants001",
  secret: "grants-secret-0123456789",
} as const;

export const USER_KIND = "user_access_token";
/** WeChat's refresh tokens live 30 days from the authorization. */
const RENEWABLE_MS = 30 * 24 * 3_600_000;
const TOKEN_LIFE_MS = 7_200_000;
/** Lengths as WeChat issues them: user tokens and refresh tokens ~100 characters, app tokens ~157. */
const USER_TOKEN_CHARS = 100;
const REFRESH_TOKEN_CHARS = 100;
const APP_TOKEN_CHARS = 157;

/** `length` URL-safe characters, pseudo-random but fixed for (`tag`, `i`). */
function opaque(tag: string, i: number, length: number): string {
  let out = "";
  for (let round = 0; out.length < length; round++)
    out += createHash("sha256").update(`${tag}/${i}/${round}`).digest("base64url");
  return out.slice(0, length);
}

/** User `i`'s openid: 28 characters starting with "o", as WeChat's are. */
export function openidOf(i: number): string {
  return `o${opaque("openid", i, 27)}`;
}

export function userKey(i: number): CredentialKey {
  return { appId: GRANTS_APP.id, kind: USER_KIND, subject: openidOf(i) };
}

/**
 * User `i`'s grant as a code exchange stores it: a 100-character access
 * token, the sealed state holding a 100-character refresh token, the scope
 * and a unionid, and the 30-day renewable window.
 */
export function userGrant(i: number, now: number): NewCredential {
  return {
    value: opaque("user-token", i, USER_TOKEN_CHARS),
    fetchedAt: now,
    expiresAt: now + TOKEN_LIFE_MS,
    state: encodeGrantState({
      refreshToken: opaque("refresh-token", i, REFRESH_TOKEN_CHARS),
      scope: "snsapi_userinfo",
      unionid: `o${opaque("unionid", i, 27)}`,
    }),
    renewableUntil: now + RENEWABLE_MS,
  };
}

/** App `i`'s access token record (account-level key, no state): the baseline record. */
export function appKey(i: number): CredentialKey {
  return { appId: `app${i}`, kind: "access_token" };
}

export function appToken(i: number, now: number): NewCredential {
  return {
    value: opaque("app-token", i, APP_TOKEN_CHARS),
    fetchedAt: now,
    expiresAt: now + TOKEN_LIFE_MS,
  };
}

/** A fresh AES-256 key for values at rest, as `openssl rand -base64 32` makes one. */
export function benchEncryptionKey(): { id: string; key: string } {
  return { id: "bench1", key: randomBytes(32).toString("base64") };
}

/**
 * Runs `write(i)` for i in [from, to) with at most `window` in flight, so a
 * pipelined client is kept busy without queueing a million promises at once.
 */
export async function writeAll(
  from: number,
  to: number,
  window: number,
  write: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = from;
  const worker = async () => {
    while (next < to) await write(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, to - from) }, worker));
}
