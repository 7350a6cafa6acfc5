import type { TokenKind } from "./control-types.js";
import { recordLeakCandidate } from "./leak-record.js";
import { looksLikeToken, mintTokenValue } from "./token-format.js";

/** One issued access token. Records are kept forever, so a value is never reissued (R3). */
export interface TokenRecord {
  readonly value: string;
  readonly appid: string;
  readonly kind: TokenKind;
  readonly generation: number;
  readonly issuedAt: number;
  /** issuedAt + lifetime: from this instant on the token is expired (R9). */
  readonly expiresAt: number;
  /** From this instant on the token is "not latest" (R7, R8), if it was superseded or revoked. */
  deadAt: number | undefined;
}

export type TokenVerdict =
  | { readonly valid: true; readonly record: TokenRecord }
  | { readonly valid: false; readonly errcode: number; readonly record?: TokenRecord };

/** Instant from which `record` stops working. */
export function validUntil(record: TokenRecord): number {
  return Math.min(record.expiresAt, record.deadAt ?? Number.POSITIVE_INFINITY);
}

/** Makes `record` stop working at `at`, unless it already stops earlier. */
export function killAt(record: TokenRecord, at: number): void {
  record.deadAt = Math.min(record.deadAt ?? Number.POSITIVE_INFINITY, at);
}

/**
 * Every access token ever issued, by value. Validity intervals are half-open:
 * a token works while `now < validUntil` and fails at exactly `validUntil`.
 */
export class TokenRegistry {
  readonly #byValue = new Map<string, TokenRecord>();
  readonly #malformedErrcode: number;

  constructor(malformedErrcode: number) {
    this.#malformedErrcode = malformedErrcode;
  }

  mint(appid: string, kind: TokenKind, generation: number, now: number, lifetimeMs: number) {
    let value = mintTokenValue(generation);
    while (this.#byValue.has(value)) value = mintTokenValue(generation);
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("access_token", value);
    const record: TokenRecord = {
      value,
      appid,
      kind,
      generation,
      issuedAt: now,
      expiresAt: now + lifetimeMs,
      deadAt: undefined,
    };
    this.#byValue.set(value, record);
    return record;
  }

  lookup(value: string): TokenRecord | undefined {
    return this.#byValue.get(value);
  }

  /**
   * What an API answers for `value` at `now`:
   * - never issued → 40001 (40014 if configured and the shape is wrong) (R10);
   * - past its expiry, and the expiry came no later than its death → 42001 (R9);
   * - superseded or revoked before it expired → 40001 (R7, R8), even after
   *   the expiry has passed too (emulator choice for the precedence).
   */
  verdict(value: string, now: number): TokenVerdict {
    const record = this.#byValue.get(value);
    if (!record) {
      return { valid: false, errcode: looksLikeToken(value) ? 40001 : this.#malformedErrcode };
    }
    const expired = now >= record.expiresAt;
    const dead = record.deadAt !== undefined && now >= record.deadAt;
    if (!expired && !dead) return { valid: true, record };
    const diedFirst = record.deadAt !== undefined && record.deadAt < record.expiresAt;
    if (expired && !(dead && diedFirst)) return { valid: false, errcode: 42001, record };
    return { valid: false, errcode: 40001, record };
  }

  /** Every token of `appid` that still works stops now (secret reset, app removal). */
  revokeApp(appid: string, now: number): void {
    for (const record of this.#byValue.values()) {
      if (record.appid === appid) killAt(record, now);
    }
  }

  clear(): void {
    this.#byValue.clear();
  }
}
