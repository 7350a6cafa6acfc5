import type { NewCredential, StoredCredential } from "../../token/credential.js";
import { type CredentialKey, keyId, parseKeyId } from "../../token/credential.js";
import { isSealedValue, type ValueCipher, ValueDecryptionError } from "./value-cipher.js";

/**
 * How a credential is laid out in Redis: one hash per credential whose fields
 * are decimal strings (`version`, `fence`, `fetchedAt`, `expiresAt`,
 * `previousValidUntil`) plus `value`. The pub/sub message of a write carries
 * the same fields, so one decoder serves reads and notifications.
 *
 * With a ValueCipher, `value` is sealed (see value-cipher.ts) with the
 * credential id as AAD; hash reads and pub/sub messages both carry the
 * ciphertext. Without one, values are stored as they are. A plaintext value
 * read while a cipher is configured is accepted (written before encryption
 * was turned on); the next write of that credential seals it.
 */

/** How values are sealed: the credential id ("<appId>/<kind>") and the cipher, if any. */
export interface ValueSealing {
  readonly id: string;
  readonly cipher?: ValueCipher | undefined;
}

/** The hash fields of a write, in the order `cas-credential-1.lua` takes them. */
export interface EncodedCredential {
  readonly value: string;
  readonly fetchedAt: string;
  readonly expiresAt: string;
  /** "" when the credential has none (the script then removes the field). */
  readonly previousValidUntil: string;
}

export function encodeCredential(next: NewCredential, sealing?: ValueSealing): EncodedCredential {
  return {
    value: sealing?.cipher ? sealing.cipher.encrypt(next.value, sealing.id) : next.value,
    fetchedAt: encodeTime(next.fetchedAt, "fetchedAt"),
    expiresAt: encodeTime(next.expiresAt, "expiresAt"),
    previousValidUntil:
      next.previousValidUntil === undefined
        ? ""
        : encodeTime(next.previousValidUntil, "previousValidUntil"),
  };
}

function encodeTime(ms: number, field: string): string {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`${field} must be epoch milliseconds`);
  return String(ms);
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
 * only a foreign writer could produce, and ValueDecryptionError on a sealed
 * value that cannot be opened. Never puts the value in a message.
 */
export function decodeFields(
  fields: Readonly<Record<string, string>>,
  sealing?: ValueSealing,
): StoredCredential | undefined {
  if (Object.keys(fields).length === 0) return undefined;
  const value = fields.value;
  if (value === undefined) throw new Error("stored credential has no value field");
  const previous = fields.previousValidUntil;
  return {
    value: openValue(value, sealing),
    version: decodeNumber(fields, "version"),
    fetchedAt: decodeNumber(fields, "fetchedAt"),
    expiresAt: decodeNumber(fields, "expiresAt"),
    ...(previous === undefined
      ? {}
      : { previousValidUntil: decodeNumber(fields, "previousValidUntil") }),
  };
}

/** The plaintext of a stored value; plaintext stays as is (written before encryption). */
function openValue(value: string, sealing: ValueSealing | undefined): string {
  if (!isSealedValue(value)) return value;
  const id = sealing?.id ?? "(unnamed)";
  if (!sealing?.cipher)
    throw new ValueDecryptionError(
      `credential ${id} is encrypted but no encryption keys are configured`,
      "no-keys",
    );
  return sealing.cipher.decrypt(value, id);
}

function decodeNumber(fields: Readonly<Record<string, string>>, name: string): number {
  const raw = fields[name];
  const n = raw === undefined || raw === "" ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(n))
    throw new Error(`stored credential field '${name}' is not an integer`);
  return n;
}

/**
 * A message published by `cas-credential-1.lua`: `{"id": "<appId>/<kind>",
 * "fields": {…}}`. Throws, without quoting the message (it holds the value),
 * when it is not one; ValueDecryptionError when its sealed value cannot be
 * opened with `cipher` for the id it names.
 */
export function decodeUpdateMessage(
  message: string,
  cipher?: ValueCipher,
): {
  key: CredentialKey;
  credential: StoredCredential;
} {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw new Error("update message is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new Error("update message is not an object");
  const { id, fields } = parsed as { id?: unknown; fields?: unknown };
  const key = typeof id === "string" ? parseKeyId(id) : undefined;
  if (!key) throw new Error("update message names no credential");
  if (typeof fields !== "object" || fields === null || Array.isArray(fields))
    throw new Error("update message has no fields");
  const strings: Record<string, string> = {};
  for (const [name, v] of Object.entries(fields)) if (typeof v === "string") strings[name] = v;
  const credential = decodeFields(strings, { id: keyId(key), cipher });
  if (!credential) throw new Error("update message has empty fields");
  return { key, credential };
}
