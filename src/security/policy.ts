import { createHash } from "node:crypto";
import { APP_ID_PATTERN } from "../token/app.js";
import { CREDENTIAL_KINDS, type CredentialKind } from "../token/credential.js";
import { type Cidr, parseCidr } from "./ip.js";

export const PERMISSIONS = ["get", "watch", "invalidate", "admin"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** One caller of the broker, recognised by an API key or a client certificate. */
export interface ClientPolicy {
  /** Names the client in refusals and audit lines, e.g. "orders-service". */
  id: string;
  /** Hex SHA-256 of the API key (see hashApiKey); keys are never stored in clear. */
  apiKeySha256?: string;
  /** The subject CN of the client's verified certificate. */
  tlsIdentity?: string;
  /** The broker's app ids this client may use, or ["*"] for all. */
  apps: readonly string[];
  /** The credential kinds it may use; all when unset. */
  kinds?: readonly string[];
  permissions: readonly Permission[];
  /** GetToken's token bucket: refill per second (default 50). */
  ratePerSecond?: number;
  /** Its capacity (default 100). */
  burst?: number;
  /** InvalidateToken's own bucket (a report can cause a WeChat call): refill per second (default 5). */
  invalidateRatePerSecond?: number;
  /** Its capacity (default 20). */
  invalidateBurst?: number;
  /** Concurrent WatchToken streams (default 20). */
  maxWatchStreams?: number;
}

export interface SecurityPolicy {
  /**
   * The known clients. Empty: no authentication (every caller is the
   * anonymous client, with every permission and no limits).
   */
  clients: readonly ClientPolicy[];
  /** IPv4/IPv6 CIDRs callers must come from; empty or unset: any address. */
  allowCidrs?: readonly string[];
  /** CIDRs of proxies whose X-Forwarded-For is honoured (see callerAddress). */
  trustedProxies?: readonly string[];
}

export const DEFAULT_RATE_PER_SECOND = 50;
export const DEFAULT_BURST = 100;
export const DEFAULT_INVALIDATE_RATE_PER_SECOND = 5;
export const DEFAULT_INVALIDATE_BURST = 20;
export const DEFAULT_MAX_WATCH_STREAMS = 20;

/** The client id every caller has when no clients are configured. Not usable as a configured id. */
export const ANONYMOUS_CLIENT = "anonymous";

/** A client as the wrapper uses it. */
export interface CompiledClient {
  readonly id: string;
  readonly keyHash: Buffer | undefined;
  readonly tlsIdentity: string | undefined;
  /** undefined: every app. */
  readonly apps: ReadonlySet<string> | undefined;
  /** undefined: every kind. */
  readonly kinds: ReadonlySet<CredentialKind> | undefined;
  readonly permissions: ReadonlySet<Permission>;
  /** undefined: no limits (the anonymous client). */
  readonly limits:
    | {
        ratePerSecond: number;
        burst: number;
        reportRatePerSecond: number;
        reportBurst: number;
        maxWatchStreams: number;
      }
    | undefined;
}

export interface CompiledPolicy {
  /** Empty: anonymous mode. */
  readonly clients: readonly CompiledClient[];
  readonly anonymous: CompiledClient;
  /** Empty: any address. */
  readonly allow: readonly Cidr[];
  readonly trustedProxies: readonly Cidr[];
}

/**
 * The hex SHA-256 of an API key, the form `apiKeySha256` takes in the config.
 * Keys should be long and random (e.g. 32 bytes from a CSPRNG, base64url):
 * an unsalted hash is only as strong as the key behind it.
 */
export function hashApiKey(key: string): string {
  if (key === "") throw new Error("an API key must not be empty");
  return createHash("sha256").update(key, "utf8").digest("hex");
}

const EMPTY_KEY_HASH = createHash("sha256").update("").digest("hex");

/**
 * Throws the problems of a policy, each naming its client or entry, as
 * `secure` would: for checking a config before any service is wrapped.
 */
export function validateSecurityPolicy(policy: SecurityPolicy): void {
  compilePolicy(policy);
}

/** Checks a policy and prepares it for lookups. Throws with every problem found, each naming its client or entry. */
export function compilePolicy(policy: SecurityPolicy): CompiledPolicy {
  const problems: string[] = [];
  const cidrs = (field: string, list: readonly string[] | undefined): Cidr[] =>
    (list ?? []).flatMap((text) => {
      try {
        return [parseCidr(text)];
      } catch (err) {
        problems.push(`${field}: ${(err as Error).message}`);
        return [];
      }
    });
  const allow = cidrs("allowCidrs", policy.allowCidrs);
  const trustedProxies = cidrs("trustedProxies", policy.trustedProxies);

  const ids = new Set<string>();
  const hashes = new Set<string>();
  const identities = new Set<string>();
  const clients = policy.clients.map((c, index) => {
    const name =
      typeof c.id === "string" && c.id !== "" ? `client '${c.id}'` : `client #${index + 1}`;
    const bad = (what: string) => problems.push(`${name}: ${what}`);

    if (typeof c.id !== "string" || !/^[\x21-\x7e]{1,128}$/.test(c.id)) {
      bad("id must be 1-128 printable characters without spaces");
    } else if (c.id === ANONYMOUS_CLIENT) {
      bad(`id '${ANONYMOUS_CLIENT}' is reserved for callers when no clients are configured`);
    } else if (ids.has(c.id)) {
      bad("id is used by another client");
    }
    ids.add(c.id);

    let keyHash: Buffer | undefined;
    if (c.apiKeySha256 !== undefined) {
      const hex = c.apiKeySha256.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hex)) {
        bad("apiKeySha256 must be 64 hex digits, the SHA-256 of the key (see hashApiKey)");
      } else if (hex === EMPTY_KEY_HASH) {
        bad("apiKeySha256 is the hash of an empty key");
      } else if (hashes.has(hex)) {
        bad("apiKeySha256 is used by another client: each client needs its own key");
      } else {
        keyHash = Buffer.from(hex, "hex");
      }
      hashes.add(hex);
    }
    if (c.tlsIdentity !== undefined) {
      if (c.tlsIdentity === "") bad("tlsIdentity is empty");
      else if (identities.has(c.tlsIdentity)) bad("tlsIdentity is used by another client");
      identities.add(c.tlsIdentity);
    }
    if (c.apiKeySha256 === undefined && c.tlsIdentity === undefined) {
      bad("needs apiKeySha256 or tlsIdentity, or it can never be recognised");
    }

    if (!Array.isArray(c.apps) || c.apps.length === 0) bad('apps is empty: list app ids or ["*"]');
    for (const app of c.apps ?? []) {
      if (app !== "*" && !APP_ID_PATTERN.test(app)) bad(`apps: '${app}' is not an app id or "*"`);
    }
    if (c.kinds !== undefined) {
      if (c.kinds.length === 0) bad("kinds is empty: leave it out to allow every kind");
      for (const kind of c.kinds) {
        if (!(CREDENTIAL_KINDS as readonly string[]).includes(kind)) {
          bad(`kinds: '${kind}' is not one of ${CREDENTIAL_KINDS.join(", ")}`);
        }
      }
    }
    if (!Array.isArray(c.permissions) || c.permissions.length === 0) {
      bad(`permissions is empty: list some of ${PERMISSIONS.join(", ")}`);
    }
    for (const p of c.permissions ?? []) {
      if (!(PERMISSIONS as readonly string[]).includes(p)) {
        bad(`permissions: '${p}' is not one of ${PERMISSIONS.join(", ")}`);
      }
    }

    const ratePerSecond = c.ratePerSecond ?? DEFAULT_RATE_PER_SECOND;
    const burst = c.burst ?? DEFAULT_BURST;
    const maxWatchStreams = c.maxWatchStreams ?? DEFAULT_MAX_WATCH_STREAMS;
    const reportRatePerSecond = c.invalidateRatePerSecond ?? DEFAULT_INVALIDATE_RATE_PER_SECOND;
    const reportBurst = c.invalidateBurst ?? DEFAULT_INVALIDATE_BURST;
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) bad("ratePerSecond must be > 0");
    if (!Number.isFinite(burst) || burst < 1) bad("burst must be at least 1");
    if (!Number.isFinite(reportRatePerSecond) || reportRatePerSecond <= 0)
      bad("invalidateRatePerSecond must be > 0");
    if (!Number.isFinite(reportBurst) || reportBurst < 1) bad("invalidateBurst must be at least 1");
    if (!Number.isInteger(maxWatchStreams) || maxWatchStreams < 0) {
      bad("maxWatchStreams must be a whole number, 0 or more");
    }

    const compiled: CompiledClient = {
      id: c.id,
      keyHash,
      tlsIdentity: c.tlsIdentity,
      apps: (c.apps ?? []).includes("*") ? undefined : new Set(c.apps ?? []),
      kinds: c.kinds === undefined ? undefined : new Set(c.kinds as readonly CredentialKind[]),
      permissions: new Set(c.permissions ?? []),
      limits: { ratePerSecond, burst, reportRatePerSecond, reportBurst, maxWatchStreams },
    };
    return compiled;
  });

  if (problems.length > 0) {
    throw new Error(`invalid security policy:\n  - ${problems.join("\n  - ")}`);
  }
  return {
    clients,
    anonymous: {
      id: ANONYMOUS_CLIENT,
      keyHash: undefined,
      tlsIdentity: undefined,
      apps: undefined,
      kinds: undefined,
      permissions: new Set(PERMISSIONS),
      limits: undefined,
    },
    allow,
    trustedProxies,
  };
}
