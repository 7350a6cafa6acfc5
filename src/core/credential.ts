/**
 * The broker's domain model of a credential, independent of protobuf (the
 * RPC layer converts) and of any credential family (the plug-ins in
 * src/credentials declare the kinds). A credential is named by the account
 * (the broker's app id), its kind and, for per-user or per-tenant kinds, a
 * subject (an openid, an authorizer appid); each write of a new value gets
 * the next version.
 */

/** The name of a registered credential kind, e.g. "access_token" (see src/credentials). */
export type CredentialKind = string;

export interface CredentialKey {
  /** The broker's id of the account (an app in the config). */
  readonly appId: string;
  readonly kind: CredentialKind;
  /** Absent for account-level credentials; an openid or authorizer appid for kinds that have one. */
  readonly subject?: string;
}

/** Account (app) ids: letters, digits, ".", "_" or "-" (no "/", which separates keys; no ":" or braces, for Redis keys), at most 64. */
export const APP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The longest `expires_in` WeChat gives a token or ticket: 7200 s. */
export const MAX_CREDENTIAL_LIFETIME_MS = 7_200_000;

/** Subjects (openids, authorizer appids): URL-safe characters, no "/" (it separates key parts). */
export const SUBJECT_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** One version of a credential as stored. Times are epoch milliseconds. */
export interface StoredCredential {
  readonly value: string;
  /** Strictly increasing per key, assigned by the store on write. */
  readonly version: number;
  readonly fetchedAt: number;
  readonly expiresAt: number;
  /** Until when the value this one replaced keeps working at WeChat. */
  readonly previousValidUntil?: number;
  /**
   * A kind's private per-credential state (e.g. a refresh token), opaque to
   * the core and sealed at rest exactly like `value`. It cannot be re-fetched:
   * stores must keep it as durably as the value.
   */
  readonly state?: string;
  /**
   * Until when the credential can be renewed without its subject (a user's
   * refresh token expiry, never extended by WeChat). Stores keep the record
   * at least this long, even after `expiresAt`: a grant must outlive its
   * access token. Absent for credentials the broker can always re-fetch.
   */
  readonly renewableUntil?: number;
}

/** A credential about to be written; the store assigns its version. */
export type NewCredential = Omit<StoredCredential, "version">;

/**
 * A map key for a credential key: "<appId>/<kind>" or "<appId>/<kind>/<subject>".
 * App ids, kinds and subjects never contain "/". Account-level keys keep the
 * form earlier releases wrote, so stored credentials stay readable.
 */
export function keyId(key: CredentialKey): string {
  return key.subject === undefined
    ? `${key.appId}/${key.kind}`
    : `${key.appId}/${key.kind}/${key.subject}`;
}

const KIND_PATTERN = /^[a-z][a-z0-9_]*$/;

/** The key of a keyId, or undefined when it is not one (unknown kinds are the registry's to judge). */
export function parseKeyId(id: string): CredentialKey | undefined {
  const parts = id.split("/");
  const [appId, kind, subject] = parts;
  if (parts.length > 3 || !appId || !kind || !KIND_PATTERN.test(kind)) return undefined;
  if (subject === undefined) return { appId, kind };
  return SUBJECT_PATTERN.test(subject) ? { appId, kind, subject } : undefined;
}

/** How a person reads a key in logs and error messages (a subject is an identifier, not a secret). */
export function describeKey(key: CredentialKey): string {
  const of = key.subject === undefined ? "" : ` for '${key.subject}'`;
  return `${key.kind}${of} of app '${key.appId}'`;
}
