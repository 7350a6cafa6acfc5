import { createCipheriv, createDecipheriv, randomBytes, scrypt } from "node:crypto";

/**
 * The encrypted file `token-broker grants export` writes and `grants import`
 * reads. Layout (big-endian bytes):
 *
 *   "TBGRANTS"  8  magic
 *   format      1  1
 *   kdf         1  1 = scrypt
 *   log2(N)     1  scrypt cost (17: N = 131072)
 *   r, p        2  scrypt block size and parallelism (8, 1)
 *   salt       16  random, per file
 *   nonce      12  random, per file
 *   ciphertext  …  AES-256-GCM of the JSON document
 *   tag        16  GCM tag; the header above is its additional data
 *
 * The key is scrypt(passphrase, salt); the header is authenticated, so a
 * file whose parameters, salt or body were altered does not open, exactly
 * like one opened with the wrong passphrase.
 */

const MAGIC = Buffer.from("TBGRANTS", "latin1");
const FORMAT = 1;
const KDF_SCRYPT = 1;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + 5 + SALT_BYTES + NONCE_BYTES;

/** OWASP's scrypt parameters: about 128 MiB and a fraction of a second per derivation. */
const DEFAULT_KDF = { log2N: 17, r: 8, p: 1 } as const;
/** What a file may ask for: enough for later releases, not enough to exhaust memory. */
const LIMITS = { log2N: [14, 20], r: [1, 32], p: [1, 16] } as const;

/** The file is not a grants export, was altered, or the passphrase is wrong. */
export class GrantsFileError extends Error {}

export async function sealGrantsFile(plaintext: Buffer, passphrase: string): Promise<Buffer> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const { log2N, r, p } = DEFAULT_KDF;
  const header = Buffer.concat([
    MAGIC,
    Buffer.from([FORMAT, KDF_SCRYPT, log2N, r, p]),
    salt,
    nonce,
  ]);
  const key = await deriveKey(passphrase, salt, DEFAULT_KDF);
  try {
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  } finally {
    key.fill(0);
  }
}

export async function openGrantsFile(file: Buffer, passphrase: string): Promise<Buffer> {
  if (file.length < HEADER_BYTES + TAG_BYTES || !file.subarray(0, MAGIC.length).equals(MAGIC))
    throw new GrantsFileError("not a token-broker grants export (no TBGRANTS header)");
  let at = MAGIC.length;
  const format = file[at++];
  const kdf = file[at++];
  const params = { log2N: file[at++] ?? 0, r: file[at++] ?? 0, p: file[at++] ?? 0 };
  if (format !== FORMAT)
    throw new GrantsFileError(
      `the grants file has format ${format}; this release reads format ${FORMAT} (use the release that wrote it, or a later one)`,
    );
  const outOfRange = (Object.keys(LIMITS) as (keyof typeof LIMITS)[]).some(
    (k) => params[k] < LIMITS[k][0] || params[k] > LIMITS[k][1],
  );
  if (kdf !== KDF_SCRYPT || outOfRange)
    throw new GrantsFileError("the grants file's header is damaged (unknown key derivation)");
  const salt = file.subarray(at, at + SALT_BYTES);
  const nonce = file.subarray(at + SALT_BYTES, HEADER_BYTES);
  const key = await deriveKey(passphrase, salt, params);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAAD(file.subarray(0, HEADER_BYTES));
    decipher.setAuthTag(file.subarray(file.length - TAG_BYTES));
    const body = file.subarray(HEADER_BYTES, file.length - TAG_BYTES);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new GrantsFileError(
      "cannot open the grants file: wrong passphrase, or the file was altered or damaged (authentication failed); nothing was imported",
    );
  } finally {
    key.fill(0);
  }
}

function deriveKey(
  passphrase: string,
  salt: Buffer,
  kdf: { log2N: number; r: number; p: number },
): Promise<Buffer> {
  const N = 2 ** kdf.log2N;
  const maxmem = 128 * N * kdf.r * 2 + 16 * 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize("NFC"), salt, 32, { N, r: kdf.r, p: kdf.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}
