import { randomBytes } from "node:crypto";

/** Random bytes per value: 96 bytes → 128 base64url characters. */
const TOKEN_RANDOM_BYTES = 96;
/** 64 random bytes → 86 characters, the length of real jsapi tickets. */
const TICKET_RANDOM_BYTES = 64;

const TOKEN_SHAPE = /^\d{1,9}_[A-Za-z0-9_-]+$/;

/**
 * A fresh access token value `<n>_<base64url>` (R3), about 130 characters:
 * within the 64–512 the facts allow and close to real tokens (`13_fUIS1W…`).
 * `n` is the generation of the slot, which makes test logs easy to read.
 */
export function mintTokenValue(generation: number): string {
  return `${generation}_${randomBytes(TOKEN_RANDOM_BYTES).toString("base64url")}`;
}

/** A fresh ticket value (opaque base64url). */
export function mintTicketValue(): string {
  return randomBytes(TICKET_RANDOM_BYTES).toString("base64url");
}

/** 24 random bytes → 32 base64url characters, the length of real OAuth codes. */
const CODE_RANDOM_BYTES = 24;

/** A fresh web OAuth code (opaque base64url). */
export function mintCodeValue(): string {
  return randomBytes(CODE_RANDOM_BYTES).toString("base64url");
}

/** Whether `value` has the shape the emulator issues (used for 40014, R10). */
export function looksLikeToken(value: string): boolean {
  return value.length >= 64 && value.length <= 512 && TOKEN_SHAPE.test(value);
}
