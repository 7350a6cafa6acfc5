/**
 * The broker's domain model of a credential, independent of protobuf (the
 * RPC layer converts). A credential is identified by the broker's app id and
 * its kind; each write of a new value gets the next version.
 */

export const CREDENTIAL_KINDS = ["access_token", "jsapi_ticket", "wx_card_ticket"] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export interface CredentialKey {
  readonly appId: string;
  readonly kind: CredentialKind;
}

/** The longest `expires_in` WeChat gives a token or ticket: 7200 s. */
export const MAX_CREDENTIAL_LIFETIME_MS = 7_200_000;

/** One version of a credential as stored. Times are epoch milliseconds. */
export interface StoredCredential {
  readonly value: string;
  /** Strictly increasing per key, assigned by the store on write. */
  readonly version: number;
  readonly fetchedAt: number;
  readonly expiresAt: number;
  /** Until when the value this one replaced keeps working at WeChat. */
  readonly previousValidUntil?: number;
}

/** A credential about to be written; the store assigns its version. */
export type NewCredential = Omit<StoredCredential, "version">;

/** A map key for a credential key: "<appId>/<kind>". App ids never contain "/". */
export function keyId(key: CredentialKey): string {
  return `${key.appId}/${key.kind}`;
}

export function parseKeyId(id: string): CredentialKey | undefined {
  const slash = id.lastIndexOf("/");
  const kind = id.slice(slash + 1);
  if (slash <= 0 || !(CREDENTIAL_KINDS as readonly string[]).includes(kind)) return undefined;
  return { appId: id.slice(0, slash), kind: kind as CredentialKind };
}

/** How a person reads a key in logs and error messages. */
export function describeKey(key: CredentialKey): string {
  return `${key.kind} of app '${key.appId}'`;
}
