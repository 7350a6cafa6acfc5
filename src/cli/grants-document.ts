import {
  APP_ID_PATTERN,
  type CredentialKey,
  type StoredCredential,
  SUBJECT_PATTERN,
} from "../core/credential.js";
import type { CredentialUpdate } from "../core/ports/token-store.js";
import { KINDS } from "../credentials/index.js";
import { GrantsFileError } from "./grants-file.js";

/** What a grants file holds once opened. */
export interface GrantsDocument {
  readonly exportedAt: string;
  readonly grants: readonly CredentialUpdate[];
}

const DOCUMENT = "token-broker-grants";
const VERSION = 1;

/** The kinds whose credentials are grants (they have a subject and cannot be re-fetched). */
export function grantKinds(): string[] {
  return KINDS.names().filter((name) => (KINDS.get(name)?.subject ?? "none") !== "none");
}

export function encodeGrants(grants: readonly CredentialUpdate[], now: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      document: DOCUMENT,
      version: VERSION,
      exportedAt: new Date(now).toISOString(),
      grants: grants.map(({ key, credential }) => ({
        appId: key.appId,
        kind: key.kind,
        subject: key.subject,
        credential,
      })),
    }),
    "utf8",
  );
}

/** Parses and checks every grant before any is written: a bad file writes nothing. */
export function decodeGrants(plaintext: Buffer): GrantsDocument {
  let doc: { document?: unknown; version?: unknown; exportedAt?: unknown; grants?: unknown };
  try {
    doc = JSON.parse(plaintext.toString("utf8")) as typeof doc;
  } catch {
    throw new GrantsFileError("the grants file opened but its content is not a grants document");
  }
  if (doc?.document !== DOCUMENT || !Array.isArray(doc.grants))
    throw new GrantsFileError("the grants file opened but its content is not a grants document");
  if (doc.version !== VERSION)
    throw new GrantsFileError(
      `the grants document has version ${String(doc.version)}; this release reads version ${VERSION}`,
    );
  const kinds = new Set(grantKinds());
  const grants = doc.grants.map((raw: unknown, i: number): CredentialUpdate => {
    const g = (raw ?? {}) as Record<string, unknown>;
    const bad = (what: string) => new GrantsFileError(`grant #${i + 1} in the file: ${what}`);
    if (typeof g.appId !== "string" || !APP_ID_PATTERN.test(g.appId)) throw bad("bad app id");
    if (typeof g.kind !== "string" || !kinds.has(g.kind)) throw bad("not a grant kind");
    if (typeof g.subject !== "string" || !SUBJECT_PATTERN.test(g.subject)) throw bad("bad subject");
    const key: CredentialKey = { appId: g.appId, kind: g.kind, subject: g.subject };
    return { key, credential: credentialOf(g.credential, bad) };
  });
  return { exportedAt: String(doc.exportedAt), grants };
}

function credentialOf(raw: unknown, bad: (what: string) => Error): StoredCredential {
  const c = (raw ?? {}) as Record<string, unknown>;
  const time = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (typeof c.value !== "string" || c.value === "") throw bad("no value");
  if (typeof c.version !== "number" || !Number.isSafeInteger(c.version) || c.version < 1)
    throw bad("bad version");
  if (!time(c.fetchedAt) || !time(c.expiresAt)) throw bad("bad times");
  for (const optional of ["previousValidUntil", "renewableUntil"] as const)
    if (c[optional] !== undefined && !time(c[optional])) throw bad(`bad ${optional}`);
  if (c.state !== undefined && typeof c.state !== "string") throw bad("bad state");
  return {
    value: c.value,
    version: c.version,
    fetchedAt: c.fetchedAt as number,
    expiresAt: c.expiresAt as number,
    ...(c.previousValidUntil === undefined
      ? {}
      : { previousValidUntil: c.previousValidUntil as number }),
    ...(c.state === undefined ? {} : { state: c.state }),
    ...(c.renewableUntil === undefined ? {} : { renewableUntil: c.renewableUntil as number }),
  };
}
