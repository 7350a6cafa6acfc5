import { createHash } from "node:crypto";
import { z } from "zod";
import type { CredentialKind } from "../core/credential.js";
import { APP_ID_PATTERN } from "../core/credential.js";
import { CREDENTIAL_KINDS } from "../credentials/index.js";
import {
  EVEN_WITH_ISSUES,
  type Frozen,
  list,
  num,
  reportDuplicates,
  section,
  sha256Hex,
  text,
} from "../shared/schema.js";
import { type Cidr, parseCidr } from "./ip.js";

export const PERMISSIONS = ["get", "watch", "invalidate", "admin", "oauth"] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const DEFAULT_RATE_PER_SECOND = 50;
export const DEFAULT_BURST = 100;
export const DEFAULT_INVALIDATE_RATE_PER_SECOND = 5;
export const DEFAULT_INVALIDATE_BURST = 20;
export const DEFAULT_MAX_WATCH_STREAMS = 20;

/** The client id every caller has when no clients are configured. Not usable as a configured id. */
export const ANONYMOUS_CLIENT = "anonymous";

const EMPTY_KEY_HASH = createHash("sha256").update("").digest("hex");

/**
 * An IPv4/IPv6 CIDR with its prefix length written out ("10.0.0.0/8",
 * "fd00::/8"); a bare address is refused here, as a forgotten "/n" is more
 * likely a typo than a wish to allow one host.
 */
export function cidrSchema() {
  return text("a CIDR like 10.0.0.0/8 or fd00::/8").superRefine((cidr, ctx) => {
    if (!cidr.includes("/")) {
      ctx.addIssue({ code: "custom", message: "expected a CIDR like 10.0.0.0/8 or fd00::/8" });
      return;
    }
    try {
      parseCidr(cidr);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  });
}

/** A credential kind name, as the kind registry lists them (read at parse time). */
const kindName = text().refine((kind) => CREDENTIAL_KINDS.includes(kind), {
  error: () => `expected one of ${CREDENTIAL_KINDS.join(", ")}`,
});

/** One caller of the broker, recognised by an API key or a client certificate. */
const clientSchema = section({
  /** Names the client in refusals and audit lines, e.g. "orders-service". */
  id: text()
    .regex(/^[\x21-\x7e]{1,128}$/, "1-128 printable characters without spaces")
    .refine((id) => id !== ANONYMOUS_CLIENT, {
      error: `'${ANONYMOUS_CLIENT}' is reserved for callers when no clients are configured`,
    }),
  /** Hex SHA-256 of its API key (sent as `authorization: Bearer <key>`); keys are never stored in clear. */
  apiKeySha256: sha256Hex()
    .refine((hex) => hex !== EMPTY_KEY_HASH, { error: "is the hash of an empty key" })
    .optional(),
  /** The subject CN of its verified client certificate (mTLS). */
  tlsIdentity: text().optional(),
  /** The broker's app ids this client may use, or ["*"] for all. */
  apps: list(
    text().refine((app) => app === "*" || APP_ID_PATTERN.test(app), {
      error: (iss) => `${JSON.stringify(iss.input)} is not an app id or "*"`,
    }),
  ).min(1, 'list the app ids it may use, or ["*"]'),
  /** The credential kinds it may use; all when absent. */
  kinds: list(kindName.transform((kind) => kind as CredentialKind))
    .min(1, "is empty: leave it out to allow every kind")
    .optional(),
  /**
   * The apps whose users' credentials (per-user OAuth tokens, OAuthService)
   * this client may use, or ["*"]; none when absent. Separate from `apps`:
   * reading one user's token is not reading every user's.
   */
  userTokenApps: list(
    text().refine((app) => app === "*" || APP_ID_PATTERN.test(app), {
      error: (iss) => `${JSON.stringify(iss.input)} is not an app id or "*"`,
    }),
  ).optional(),
  permissions: list(
    z.enum(PERMISSIONS, { error: `expected one of ${PERMISSIONS.join(", ")}` }),
  ).min(1, `expected at least one of ${PERMISSIONS.join(", ")}`),
  /** GetToken's token bucket: refill per second (default 50) and capacity (default 100). */
  ratePerSecond: num(0.01, 100_000).optional(),
  burst: num(1, 1_000_000).optional(),
  /** InvalidateToken's own bucket (a report can cause a WeChat call): default 5/s, 20. */
  invalidateRatePerSecond: num(0.01, 100_000).optional(),
  invalidateBurst: num(1, 1_000_000).optional(),
  /** Concurrent WatchToken streams (default 20). */
  maxWatchStreams: num(1, 100_000, true).optional(),
}).superRefine((c, ctx) => {
  if (typeof c !== "object" || c === null) return;
  if (c.apiKeySha256 === undefined && c.tlsIdentity === undefined)
    ctx.addIssue({
      code: "custom",
      message: "needs apiKeySha256 or tlsIdentity to recognise the client",
    });
}, EVEN_WITH_ISSUES);

/** The configured clients: each one recognisable by its own key or certificate name. */
export function clientsSchema() {
  return list(clientSchema).superRefine((clients, ctx) => {
    if (!Array.isArray(clients)) return;
    reportDuplicates(ctx, clients, "id", (id) => `duplicate client id '${id}'`);
    reportDuplicates(
      ctx,
      clients,
      "apiKeySha256",
      () => "is used by another client: each client needs its own key",
      (hex) => hex.toLowerCase(),
    );
    reportDuplicates(ctx, clients, "tlsIdentity", () => "is used by another client");
  }, EVEN_WITH_ISSUES);
}

/** One client as validated by clientsSchema (the config's security.clients). */
export type ClientPolicy = Frozen<z.output<typeof clientSchema>>;

export interface SecurityPolicy {
  /**
   * The known clients, validated by clientsSchema. Empty: no authentication
   * (every caller is the anonymous client, with every permission and no limits).
   */
  readonly clients: readonly ClientPolicy[];
  /** IPv4/IPv6 CIDRs callers must come from; empty or unset: any address. */
  readonly allowCidrs?: readonly string[];
  /** CIDRs of proxies whose X-Forwarded-For is honoured (see callerAddress). */
  readonly trustedProxies?: readonly string[];
}

/** A client as the wrapper uses it. */
export interface CompiledClient {
  readonly id: string;
  readonly keyHash: Buffer | undefined;
  readonly tlsIdentity: string | undefined;
  /** undefined: every app. */
  readonly apps: ReadonlySet<string> | undefined;
  /** undefined: every kind. */
  readonly kinds: ReadonlySet<CredentialKind> | undefined;
  /** Apps whose users' credentials it may use; undefined: every app's. */
  readonly userTokenApps: ReadonlySet<string> | undefined;
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

/**
 * Prepares a policy for lookups. The policy was validated where it was read
 * (the config schema: clientsSchema, cidrSchema); this only compiles it, so
 * the rules live in one place.
 */
export function compilePolicy(policy: SecurityPolicy): CompiledPolicy {
  const clients = policy.clients.map(
    (c): CompiledClient => ({
      id: c.id,
      keyHash:
        c.apiKeySha256 === undefined ? undefined : Buffer.from(c.apiKeySha256.toLowerCase(), "hex"),
      tlsIdentity: c.tlsIdentity,
      apps: c.apps.includes("*") ? undefined : new Set(c.apps),
      kinds: c.kinds === undefined ? undefined : new Set(c.kinds),
      userTokenApps: c.userTokenApps?.includes("*") ? undefined : new Set(c.userTokenApps ?? []),
      permissions: new Set(c.permissions),
      limits: {
        ratePerSecond: c.ratePerSecond ?? DEFAULT_RATE_PER_SECOND,
        burst: c.burst ?? DEFAULT_BURST,
        reportRatePerSecond: c.invalidateRatePerSecond ?? DEFAULT_INVALIDATE_RATE_PER_SECOND,
        reportBurst: c.invalidateBurst ?? DEFAULT_INVALIDATE_BURST,
        maxWatchStreams: c.maxWatchStreams ?? DEFAULT_MAX_WATCH_STREAMS,
      },
    }),
  );
  return {
    clients,
    anonymous: {
      id: ANONYMOUS_CLIENT,
      keyHash: undefined,
      tlsIdentity: undefined,
      apps: undefined,
      kinds: undefined,
      userTokenApps: undefined,
      permissions: new Set(PERMISSIONS),
      limits: undefined,
    },
    allow: (policy.allowCidrs ?? []).map((cidr) => parseCidr(cidr)),
    trustedProxies: (policy.trustedProxies ?? []).map((cidr) => parseCidr(cidr)),
  };
}
