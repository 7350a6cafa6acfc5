import type { StoredCredential } from "../../core/credential.js";
import {
  type CredentialKey,
  MAX_CREDENTIAL_LIFETIME_MS,
  parseKeyId,
} from "../../core/credential.js";
import { isSealedValue, type ValueCipher, ValueDecryptionError } from "./value-cipher.js";

/**
 * How a credential is laid out in Redis: one hash per credential whose fields
 * are decimal strings (`version`, `fence`, `fetchedAt`, `expiresAt`,
 * `previousValidUntil`, `renewableUntil`) plus `value` and, for kinds that
 * keep one, `state` (e.g. a refresh token). A deleted credential leaves a
 * tombstone: the same hash holding only `version` (the deleted one), `fence`
 * and `deleted`, which reads as nothing. The pub/sub message of a write names only the
 * credential and its version: it is a hint to re-read the hash, never a
 * source of values or state (see RedisTokenStore).
 *
 * With a ValueCipher, `value` and `state` are each sealed (see
 * value-cipher.ts) with the credential id and the record's other fields as
 * AAD; `state`'s AAD also names the field, so a sealed value moved into
 * `state` (or the reverse) does not open. A plaintext value or state read
 * while a cipher is configured is refused, unless the operator's migration
 * switch (`acceptPlaintextUntil`) is still open.
 *
 * Whatever the cipher, a record claiming more than WeChat can issue is
 * refused: a life over MAX_LIFETIME_MS after its fetch, or a fetch in the
 * future. Such a record is not written either (RangeError): every reader
 * would refuse and delete it right after.
 */

/** The longest `expires_in` WeChat gives a token or ticket (facts §1, §3). */
export const MAX_LIFETIME_MS = MAX_CREDENTIAL_LIFETIME_MS;
/** How far a replica's clock may run ahead of this one's before its fetchedAt is refused. */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** How values are sealed and what is accepted when reading. */
export interface ValueSealing {
  /** The credential id, keyId(key): "<appId>/<kind>" or "<appId>/<kind>/<subject>". */
  readonly id: string;
  readonly cipher?: ValueCipher | undefined;
  /** With a cipher: plaintext values are still read before this time (epoch ms). */
  readonly acceptPlaintextUntil?: number | undefined;
  /** Epoch ms, for the plaintext switch and the future-fetch check. */
  readonly now: number;
}

/** Why a stored record is not taken for a credential. Messages never quote a value. */
export type RefusalReason = "plaintext" | "lifetime" | "future";

/** A record this broker would never have written: treated as corrupt, never served. */
export class RefusedCredentialError extends Error {
  override readonly name = "RefusedCredentialError";
  constructor(
    message: string,
    readonly reason: RefusalReason,
  ) {
    super(message);
  }
}

/** The hash fields of a write, in the order the write scripts take them. */
export interface EncodedCredential {
  readonly value: string;
  readonly version: string;
  readonly fetchedAt: string;
  readonly expiresAt: string;
  /** "" when the credential has none (the script then removes the field). */
  readonly previousValidUntil: string;
  /** The kind's state, sealed like `value`; "" when there is none (the field is removed). */
  readonly state: string;
  /** "" when the credential has none (the script then removes the field). */
  readonly renewableUntil: string;
}

export function encodeCredential(
  next: StoredCredential,
  sealing: Pick<ValueSealing, "id" | "cipher" | "now">,
): EncodedCredential {
  const refused = refusal(next, sealing);
  if (refused) throw new RangeError(`${refused.message}; not written`);
  const encoded = {
    version: encodeInteger(next.version, "version"),
    fetchedAt: encodeInteger(next.fetchedAt, "fetchedAt"),
    expiresAt: encodeInteger(next.expiresAt, "expiresAt"),
    previousValidUntil:
      next.previousValidUntil === undefined
        ? ""
        : encodeInteger(next.previousValidUntil, "previousValidUntil"),
    renewableUntil:
      next.renewableUntil === undefined ? "" : encodeInteger(next.renewableUntil, "renewableUntil"),
  };
  const { cipher, id } = sealing;
  const binding = bindingOf(encoded);
  // An empty state is no state: Redis keeps none (the memory store does likewise).
  const state = next.state ?? "";
  if (!cipher && isSealedValue(state))
    throw new RangeError(
      `the state of credential ${id} looks like an encryption envelope (v<n>:…); stored unencrypted it would be misread`,
    );
  return {
    ...encoded,
    value: cipher ? cipher.encrypt(next.value, id, binding) : next.value,
    state: cipher && state !== "" ? cipher.encrypt(state, id, stateBinding(binding)) : state,
  };
}

/**
 * The record's fields a sealed value is bound to (part of its AAD), as stored.
 * renewableUntil is named only when present, so records without one keep the
 * binding earlier releases sealed them with.
 */
function bindingOf(f: Omit<EncodedCredential, "value" | "state">): string {
  const renewable = f.renewableUntil === "" ? "" : `;renewableUntil=${f.renewableUntil}`;
  return `version=${f.version};fetchedAt=${f.fetchedAt};expiresAt=${f.expiresAt};previousValidUntil=${f.previousValidUntil}${renewable}`;
}

/**
 * A sealed state's binding: the record's, under its own label, so it never
 * equals a value's (which keeps the unlabelled form earlier releases sealed).
 */
function stateBinding(binding: string): string {
  return `field=state;${binding}`;
}

function encodeInteger(n: number, field: string): string {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${field} must be an integer`);
  return String(n);
}

/** HGETALL's flat `[field, value, …]` list (as Lua returns it) as a record. */
export function fieldsFromList(list: readonly unknown[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const field = list[i];
    const value = list[i + 1];
    if (typeof field === "string" && typeof value === "string") fields[field] = value;
  }
  return fields;
}

/**
 * The credential a hash holds; undefined when it holds nothing (a missing key
 * reads as an empty hash). Throws on a hash that is not a credential, which
 * only a foreign writer could produce; ValueDecryptionError on a sealed value
 * that cannot be opened for this record; RefusedCredentialError on a record
 * this broker would never have written. Never puts the value in a message.
 */
export function decodeFields(
  fields: Readonly<Record<string, string>>,
  sealing: ValueSealing,
): StoredCredential | undefined {
  if (Object.keys(fields).length === 0 || tombstoneVersion(fields) !== undefined) return undefined;
  const value = fields.value;
  if (value === undefined) throw new Error("stored credential has no value field");
  const previous = fields.previousValidUntil;
  const renewable = fields.renewableUntil;
  const credential: StoredCredential = {
    value,
    version: decodeNumber(fields, "version"),
    fetchedAt: decodeNumber(fields, "fetchedAt"),
    expiresAt: decodeNumber(fields, "expiresAt"),
    ...(previous === undefined || previous === ""
      ? {}
      : { previousValidUntil: decodeNumber(fields, "previousValidUntil") }),
    ...(renewable === undefined || renewable === ""
      ? {}
      : { renewableUntil: decodeNumber(fields, "renewableUntil") }),
  };
  checkIssuable(credential, sealing);
  const binding = bindingOf({
    version: String(credential.version),
    fetchedAt: String(credential.fetchedAt),
    expiresAt: String(credential.expiresAt),
    previousValidUntil:
      credential.previousValidUntil === undefined ? "" : String(credential.previousValidUntil),
    renewableUntil:
      credential.renewableUntil === undefined ? "" : String(credential.renewableUntil),
  });
  const state = fields.state;
  return {
    ...credential,
    value: open(value, "value", binding, sealing),
    ...(state === undefined || state === ""
      ? {}
      : { state: open(state, "state", stateBinding(binding), sealing) }),
  };
}

/**
 * The deleted version a tombstone keeps (delete-credential-1.lua), or
 * undefined when the hash is not one. A credential written over it is
 * numbered above that version, and no replica may restore one at or below it.
 */
export function tombstoneVersion(fields: Readonly<Record<string, string>>): number | undefined {
  if (fields.deleted === undefined) return undefined;
  return decodeNumber(fields, "version");
}

/** Refuses what WeChat cannot have issued; a forged record could otherwise live for ever. */
function checkIssuable(c: StoredCredential, sealing: ValueSealing): void {
  const refused = refusal(c, sealing);
  if (refused) throw refused;
}

/** Why a record is more than WeChat issues, if it is; in ms, as 1 ms over is over. */
function refusal(
  c: Pick<StoredCredential, "fetchedAt" | "expiresAt">,
  { id, now }: Pick<ValueSealing, "id" | "now">,
): RefusedCredentialError | undefined {
  const life = c.expiresAt - c.fetchedAt;
  if (life > MAX_LIFETIME_MS)
    return new RefusedCredentialError(
      `credential ${id} claims to live ${life} ms after its fetch; WeChat issues at most ${MAX_LIFETIME_MS} ms`,
      "lifetime",
    );
  if (c.fetchedAt > now + MAX_CLOCK_SKEW_MS)
    return new RefusedCredentialError(
      `credential ${id} claims a fetch ${c.fetchedAt - now} ms in the future (more than the ${MAX_CLOCK_SKEW_MS} ms of clock skew allowed)`,
      "future",
    );
  return undefined;
}

/** A stored field (`value` or `state`) in the clear, checked against the sealing rules. */
function open(
  stored: string,
  field: "value" | "state",
  binding: string,
  sealing: ValueSealing,
): string {
  const { id, cipher } = sealing;
  const what = field === "value" ? `credential ${id}` : `the state of credential ${id}`;
  if (!isSealedValue(stored)) {
    if (!cipher) return stored;
    if (sealing.acceptPlaintextUntil !== undefined && sealing.now < sealing.acceptPlaintextUntil)
      return stored; // the operator's migration switch is open
    throw new RefusedCredentialError(
      `${what} is stored unencrypted while encryption keys are configured; refused (a plaintext store is read only while security.acceptPlaintextUntil is in the future)`,
      "plaintext",
    );
  }
  if (!cipher)
    throw new ValueDecryptionError(
      `${what} is encrypted but no encryption keys are configured`,
      "no-keys",
    );
  if (field === "value") return cipher.decrypt(stored, id, binding);
  try {
    return cipher.decrypt(stored, id, binding);
  } catch (err) {
    // Say which field did not open; the cipher's message names the credential only.
    if (err instanceof ValueDecryptionError)
      throw new ValueDecryptionError(`${err.message} (its state field)`, err.problem, err.keyId);
    throw err;
  }
}

function decodeNumber(fields: Readonly<Record<string, string>>, name: string): number {
  const raw = fields[name];
  const n = raw === undefined || !/^-?[0-9]{1,16}$/.test(raw) ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(n))
    throw new Error(`stored credential field '${name}' is not an integer`);
  return n;
}

/**
 * A message published by the write scripts: `{"id": "<keyId>",
 * "version": "<n>"}`, a hint that the credential was written. Throws,
 * without quoting the message, when it is not one. Any other field (a value
 * someone published) is ignored: replicas only ever read values from the hash.
 */
export function decodeUpdateHint(message: string): { key: CredentialKey } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw new Error("update message is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new Error("update message is not an object");
  const { id } = parsed as { id?: unknown };
  const key = typeof id === "string" ? parseKeyId(id) : undefined;
  if (!key) throw new Error("update message names no credential");
  return { key };
}
