import { recordLeakCandidate } from "./leak-record.js";
import type { OAuthUserSpec } from "./oauth-types.js";
import { mintCodeValue } from "./token-format.js";

/** A user as stored: `OAuthUserSpec` with the optional fields settled. */
export interface OAuthUser {
  readonly openid: string;
  readonly scope: OAuthUserSpec["scope"];
  readonly unionid: string | undefined;
  readonly snapshot: boolean;
}

/** One minted code. Kept forever, so a value is never reissued and reuse is recognised. */
export interface CodeRecord {
  readonly value: string;
  readonly appid: string;
  readonly user: OAuthUser;
  readonly issuedAt: number;
  /** From this instant on the code is expired (half-open, like tokens). */
  readonly expiresAt: number;
  usedAt: number | undefined;
}

export type CodeVerdict =
  | { readonly ok: true; readonly record: CodeRecord }
  | { readonly ok: false; readonly errcode: number };

/** The codes the control API minted ("the user authorized", R33). */
export class OAuthCodes {
  readonly #byValue = new Map<string, CodeRecord>();

  mint(appid: string, user: OAuthUser, now: number, ttlMs: number): CodeRecord {
    let value = mintCodeValue();
    while (this.#byValue.has(value)) value = mintCodeValue();
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("oauth_code", value);
    const record: CodeRecord = {
      value,
      appid,
      user,
      issuedAt: now,
      expiresAt: now + ttlMs,
      usedAt: undefined,
    };
    this.#byValue.set(value, record);
    return record;
  }

  /**
   * Uses `value` for `appid` at `now` (R33):
   * - never minted, or minted for another account → 40029;
   * - past its life → `expiredErrcode` (40029, or 42003), used or not;
   * - already exchanged → 40163;
   * - otherwise it is marked used and returned.
   * A rejected call leaves the code as it was.
   */
  take(value: string, appid: string, now: number, expiredErrcode: number): CodeVerdict {
    const record = this.#byValue.get(value);
    if (!record || record.appid !== appid) return { ok: false, errcode: 40029 };
    if (now >= record.expiresAt) return { ok: false, errcode: expiredErrcode };
    if (record.usedAt !== undefined) return { ok: false, errcode: 40163 };
    record.usedAt = now;
    return { ok: true, record };
  }

  clear(): void {
    this.#byValue.clear();
  }
}
