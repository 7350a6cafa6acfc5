import type { StoredCredential } from "../../core/credential.js";
import { isSealedValue, type ValueCipher, ValueDecryptionError } from "../sealing/value-cipher.js";

/**
 * How a credential is laid out in a row of the SQLite store, and how its
 * `value` and `state` are sealed (value-cipher.ts): the AAD is the
 * credential id and the row's other fields, as the Redis store binds them
 * (renewableUntil named only when present), and `state`'s also names the
 * field, so a sealed value cannot be moved to another row, another field,
 * or a row renumbered, re-dated or extended. Messages never quote a value.
 */

/** A row of the `credentials` table as SQLite returns it. */
export interface CredentialRow {
  readonly id: string;
  readonly kind: string;
  readonly version: number;
  readonly fetched_at: number;
  readonly expires_at: number;
  readonly previous_valid_until: number | null;
  readonly renewable_until: number | null;
  readonly value: string;
  readonly state: string | null;
  readonly keep_until: number;
}

export interface RowSealing {
  /** Absent: values and states are stored as they are. */
  readonly cipher?: ValueCipher | undefined;
  /** With a cipher: rows stored unencrypted are still read before this time (epoch ms). */
  readonly acceptPlaintextUntil?: number | undefined;
}

/** A row this broker would not have written under the configured keys: never served. */
export class RefusedRowError extends Error {
  override readonly name = "RefusedRowError";
}

export function encodeRow(
  id: string,
  kind: string,
  c: StoredCredential,
  keepUntil: number,
  { cipher }: RowSealing,
): CredentialRow {
  for (const [field, n] of Object.entries({
    version: c.version,
    fetchedAt: c.fetchedAt,
    expiresAt: c.expiresAt,
    previousValidUntil: c.previousValidUntil ?? 0,
    renewableUntil: c.renewableUntil ?? 0,
  }))
    if (!Number.isSafeInteger(n))
      throw new RangeError(`${field} of credential ${id} must be an integer`);
  const state = c.state === undefined || c.state === "" ? undefined : c.state;
  if (!cipher && [c.value, state].some((v) => v !== undefined && isSealedValue(v)))
    throw new RangeError(
      `the value or state of credential ${id} looks like an encryption envelope (v<n>:…); stored unencrypted it would be misread`,
    );
  const binding = bindingOf(c);
  return {
    id,
    kind,
    version: c.version,
    fetched_at: c.fetchedAt,
    expires_at: c.expiresAt,
    previous_valid_until: c.previousValidUntil ?? null,
    renewable_until: c.renewableUntil ?? null,
    value: cipher ? cipher.encrypt(c.value, id, binding) : c.value,
    state:
      state === undefined
        ? null
        : cipher
          ? cipher.encrypt(state, id, stateBinding(binding))
          : state,
    keep_until: keepUntil,
  };
}

/**
 * The credential a row holds. Throws ValueDecryptionError for a sealed field
 * that does not open for this row, RefusedRowError for a plaintext field
 * while keys are configured (past the migration window).
 */
export function decodeRow(row: CredentialRow, sealing: RowSealing, now: number): StoredCredential {
  const record = {
    version: row.version,
    fetchedAt: row.fetched_at,
    expiresAt: row.expires_at,
    ...(row.previous_valid_until === null ? {} : { previousValidUntil: row.previous_valid_until }),
    ...(row.renewable_until === null ? {} : { renewableUntil: row.renewable_until }),
  };
  const binding = bindingOf(record);
  return {
    value: open(row.value, row.id, "value", binding, sealing, now),
    ...record,
    ...(row.state === null || row.state === ""
      ? {}
      : { state: open(row.state, row.id, "state", stateBinding(binding), sealing, now) }),
  };
}

/** The fields a sealed value is bound to: the Redis store's binding, spelled alike. */
function bindingOf(c: Omit<StoredCredential, "value" | "state">): string {
  const renewable = c.renewableUntil === undefined ? "" : `;renewableUntil=${c.renewableUntil}`;
  return `version=${c.version};fetchedAt=${c.fetchedAt};expiresAt=${c.expiresAt};previousValidUntil=${c.previousValidUntil ?? ""}${renewable}`;
}

function stateBinding(binding: string): string {
  return `field=state;${binding}`;
}

function open(
  stored: string,
  id: string,
  field: "value" | "state",
  binding: string,
  { cipher, acceptPlaintextUntil }: RowSealing,
  now: number,
): string {
  const what = field === "value" ? `credential ${id}` : `the state of credential ${id}`;
  if (!isSealedValue(stored)) {
    if (!cipher) return stored;
    if (acceptPlaintextUntil !== undefined && now < acceptPlaintextUntil) return stored;
    throw new RefusedRowError(
      `${what} is stored unencrypted while encryption keys are configured; refused (a plaintext store is read only while security.acceptPlaintextUntil is in the future)`,
    );
  }
  if (!cipher)
    throw new ValueDecryptionError(
      `${what} is encrypted but no encryption keys are configured`,
      "no-keys",
    );
  try {
    return cipher.decrypt(stored, id, binding);
  } catch (err) {
    if (field === "state" && err instanceof ValueDecryptionError)
      throw new ValueDecryptionError(`${err.message} (its state field)`, err.problem, err.keyId);
    throw err;
  }
}

/** Whether a row holds a field stored unencrypted (served only inside the migration window). */
export function holdsPlaintext(row: CredentialRow): boolean {
  return [row.value, row.state].some((v) => v !== null && v !== "" && !isSealedValue(v));
}
