import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { inspect } from "node:util";

/**
 * Encryption at rest of credential values and kinds' states, for every store
 * that keeps them outside the process (Redis, the SQLite file): AES-256-GCM
 * with a 12-byte random IV per write. The additional authenticated data is
 * the credential id ("<appId>/<kind>[/<subject>]") and the record's other
 * fields (version, times; each store's codec spells its `binding`), so a
 * ciphertext only opens for the credential and the exact record it was
 * written for: someone able to write to the store but without the key cannot
 * move a sealed value to another credential, nor renumber, extend or re-date
 * it. A stored value reads
 *
 *   v2:<keyId>:<iv, base64url>:<ciphertext followed by the 16-byte tag, base64url>
 *
 * `v1` values (earlier releases of the Redis store: AAD = the credential id
 * only) still open, so an upgrade needs no migration; each credential's next
 * write is `v2`.
 *
 * Rotation: the first configured key encrypts; every configured key
 * decrypts, picked by the key id in the value. Configure `[new, old]`, wait
 * until every credential has been rewritten (each refresh rewrites it), then
 * drop `old`.
 *
 * Only the value (and state) is sealed; versions and times stay readable to
 * the store (Redis's Lua scripts, SQLite's queries), which never looks inside
 * the value. Someone able to write to the store can still put back an older
 * record whole (all its fields, as written): that is an old token of this
 * app, which WeChat has replaced.
 */

/** One key: `id` is written into every value it encrypts; `key` is 32 bytes. */
export interface EncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

const FORMAT = "v2";
/** Earlier releases: the AAD is the credential id alone. Read, never written. */
const LEGACY_FORMAT = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** No ':' (the field separator); short, since every stored value repeats it. */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** Anything shaped like a versioned envelope is never taken for a plaintext token. */
const ENVELOPE = /^v[0-9]+:/;

/** Why a stored value could not be opened. Messages name ids, never a value or a key. */
export type DecryptionProblem = "unknown-key" | "authentication" | "malformed" | "no-keys";

export class ValueDecryptionError extends Error {
  override readonly name = "ValueDecryptionError";
  constructor(
    message: string,
    readonly problem: DecryptionProblem,
    /** The key id the value names, when it names a well-formed one. */
    readonly keyId?: string,
  ) {
    super(message);
  }
}

/**
 * Whether a stored value is an encryption envelope (any version) rather than
 * a plaintext token. WeChat tokens and tickets never contain ':', so a value
 * written before encryption was turned on is never mistaken for one.
 */
export function isSealedValue(value: string): boolean {
  return ENVELOPE.test(value);
}

export class ValueCipher {
  readonly #keys = new Map<string, KeyObject>();
  readonly #current: string;

  /** `keys[0]` encrypts; all of them decrypt. Throws on a bad list (see parseEncryptionKeys). */
  constructor(keys: readonly EncryptionKey[]) {
    if (keys.length === 0) throw new Error("a ValueCipher needs at least one key");
    keys.forEach((k, i) => {
      checkKeyId(k.id, `key ${i}`);
      if (this.#keys.has(k.id)) throw new Error(`encryption key id '${k.id}' is used twice`);
      if (!Buffer.isBuffer(k.key) || k.key.length !== KEY_BYTES)
        throw new Error(
          `encryption key '${k.id}' must be ${KEY_BYTES} bytes, got ${Buffer.isBuffer(k.key) ? k.key.length : "no buffer"}`,
        );
      // A KeyObject holds its own copy and prints without its bytes.
      this.#keys.set(k.id, createSecretKey(Buffer.from(k.key)));
    });
    this.#current = keys[0]?.id ?? "";
  }

  /** The id new values are encrypted under. */
  get currentKeyId(): string {
    return this.#current;
  }

  /** Every id this cipher can decrypt, the current one first. */
  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  /**
   * Seals `value` for the credential `id` ("<appId>/<kind>") and the record
   * `binding` (its other fields, as credential-codec.ts spells them) under
   * the current key.
   */
  encrypt(value: string, id: string, binding: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key(this.#current), iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(boundAad(id, binding), "utf8"));
    const sealed = Buffer.concat([
      cipher.update(value, "utf8"),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `${FORMAT}:${this.#current}:${iv.toString("base64url")}:${sealed.toString("base64url")}`;
  }

  /**
   * Opens a value sealed by `encrypt` for the same `id` and `binding` (or a
   * `v1` value for the same `id`), with whichever configured key it names.
   * Throws ValueDecryptionError for an unknown key id, a failed
   * authentication (other key material, altered, copied from another
   * credential, or its record's fields changed) or a malformed envelope.
   */
  decrypt(sealed: string, id: string, binding: string): string {
    const aad = id;
    const parts = sealed.split(":");
    const [format, keyId, ivText, bodyText] = parts;
    if (format !== FORMAT && format !== LEGACY_FORMAT)
      throw new ValueDecryptionError(
        `credential ${aad} is sealed in an unsupported format '${isSealedValue(sealed) ? format : "?"}' (this version reads ${FORMAT} and ${LEGACY_FORMAT})`,
        "malformed",
      );
    if (
      parts.length !== 4 ||
      keyId === undefined ||
      !KEY_ID.test(keyId) ||
      ivText === undefined ||
      !BASE64URL.test(ivText) ||
      bodyText === undefined ||
      !BASE64URL.test(bodyText)
    )
      throw new ValueDecryptionError(
        `credential ${aad} holds a malformed ciphertext (expected ${FORMAT}:<keyId>:<iv>:<ciphertext>)`,
        "malformed",
      );
    const iv = Buffer.from(ivText, "base64url");
    const body = Buffer.from(bodyText, "base64url");
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES)
      throw new ValueDecryptionError(
        `credential ${aad} holds a malformed ciphertext (IV or tag of the wrong length)`,
        "malformed",
        keyId,
      );
    const key = this.#keys.get(keyId);
    if (!key)
      throw new ValueDecryptionError(
        `cannot decrypt credential ${aad}: it is encrypted with key '${keyId}', which is not configured (configured: ${this.keyIds.join(", ")}); add it after the current key to read values written before a rotation`,
        "unknown-key",
        keyId,
      );
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(format === FORMAT ? boundAad(id, binding) : id, "utf8"));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(body.subarray(0, body.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      throw new ValueDecryptionError(
        `cannot decrypt credential ${aad} with key '${keyId}': authentication failed (the configured key '${keyId}' is not the one that encrypted it, or the ciphertext was altered, copied from another credential, or its version or times were changed in Redis or in the SQLite file)`,
        "authentication",
        keyId,
      );
    }
  }

  toJSON(): string {
    return `ValueCipher(${this.keyIds.join(", ")})`;
  }

  [inspect.custom](): string {
    return this.toJSON();
  }

  #key(id: string): KeyObject {
    const key = this.#keys.get(id);
    if (!key) throw new Error(`encryption key '${id}' is not configured`);
    return key;
  }
}

/** The AAD of a v2 value: the credential id, then its record's fields. */
function boundAad(id: string, binding: string): string {
  return `${id}\n${binding}`;
}

interface Revealable {
  reveal(): unknown;
}

/**
 * Validates a configured key list `[{ id, key }]`, `key` being 32 bytes in
 * base64 (standard or URL-safe alphabet, padding optional; e.g. the output of
 * `openssl rand -base64 32`), as a string or as the config's `Secret`. The first entry is the current key. `where`
 * names the list in messages (a config path). Messages never quote a key.
 */
export function parseEncryptionKeys(spec: unknown, where = "encryption keys"): EncryptionKey[] {
  if (!Array.isArray(spec) || spec.length === 0)
    throw new Error(`${where} must be a non-empty list of { id, key } (the first one encrypts)`);
  const seen = new Set<string>();
  return spec.map((entry: unknown, i): EncryptionKey => {
    const at = `${where}[${i}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry))
      throw new Error(`${at} must be an object { id, key }`);
    const { id, key } = entry as { id?: unknown; key?: unknown };
    if (typeof id !== "string") throw new Error(`${at}.id must be a string`);
    checkKeyId(id, at);
    if (seen.has(id)) throw new Error(`${at}.id '${id}' is used by an earlier key`);
    seen.add(id);
    // A string, or the config's Secret (anything with reveal()).
    const raw =
      typeof key === "object" && key !== null && typeof (key as Revealable).reveal === "function"
        ? (key as Revealable).reveal()
        : key;
    if (typeof raw !== "string" || raw.trim() === "")
      throw new Error(`${at}.key (key '${id}') must be a base64 string of ${KEY_BYTES} bytes`);
    const text = raw.trim();
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text))
      throw new Error(`${at}.key (key '${id}') is not valid base64`);
    const bytes = Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (bytes.length !== KEY_BYTES)
      throw new Error(
        `${at}.key (key '${id}') must decode to ${KEY_BYTES} bytes (44 base64 characters, e.g. from 'openssl rand -base64 32'), got ${bytes.length}`,
      );
    return { id, key: bytes };
  });
}

function checkKeyId(id: string, at: string): void {
  if (typeof id !== "string" || !KEY_ID.test(id))
    throw new Error(
      `${at}.id must be 1 to 64 letters, digits, '.', '_' or '-' (it is stored in every encrypted value)`,
    );
}
