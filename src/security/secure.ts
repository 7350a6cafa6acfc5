import { createHash, timingSafeEqual } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { type TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { kindFromProto } from "../rpc/kinds.js";
import { type Peer, peerKey } from "../server/peer.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { observeStream } from "../shared/observe-stream.js";
import type { CredentialKind } from "../token/credential.js";
import { auditedApp, namedApp } from "./audit-values.js";
import { type CallerAddress, callerAddress, inAnyCidr } from "./ip.js";
import {
  type CompiledClient,
  type CompiledPolicy,
  compilePolicy,
  type Permission,
  type SecurityPolicy,
} from "./policy.js";
import { RefusalLog } from "./refusal-log.js";
import { TokenBucket } from "./token-bucket.js";

/**
 * Context value with the id of the client a call was authenticated as
 * (`ctx.values.get(clientKey)`), set by `secure` before the handler runs:
 * a configured client's id, or "anonymous" when no clients are configured.
 * `undefined` in a handler that was not wrapped.
 */
export const clientKey = createContextKey<string | undefined>(undefined, {
  description: "authenticated client id",
});

export interface SecureOptions {
  policy: SecurityPolicy;
  /** Time for the rate limits. */
  clock: Clock;
  /** One line per admin call and per kind of refusal; never a key or a token. */
  audit: Logger;
  /**
   * Where refusals go, with repeats counted per window. Pass one instance to
   * every service of a broker (they share the audit stream); by default each
   * `secure` call has its own, writing to `audit` on `clock`.
   */
  refusals?: RefusalLog;
}

/**
 * Context value with the permissions of the authenticated client, set by
 * `secure` with `clientKey`; `undefined` in a handler that was not wrapped
 * (then nothing restricts it).
 */
export const permissionsKey = createContextKey<ReadonlySet<Permission> | undefined>(undefined, {
  description: "authenticated client's permissions",
});

/** Audit `event` values. */
export type SecurityEvent =
  | "address_denied"
  | "auth_failure"
  | "permission_denied"
  | "rate_limited"
  | "stream_limited"
  | "admin_call";

/** What a method needs. */
interface MethodRule {
  readonly permission: Permission;
  /**
   * "rate": takes a token from the client's bucket; "reports": from its own
   * InvalidateToken bucket; "streams": holds one of its stream slots.
   */
  readonly limit?: "rate" | "reports" | "streams";
  /** The kind a request acts on when it has no kind field (ForceRefresh replaces the access_token). */
  readonly impliedKind?: CredentialKind;
}

const RULES: ReadonlyMap<string, MethodRule> = new Map<string, MethodRule>([
  [pathOf(TokenService.method.getToken), { permission: "get", limit: "rate" }],
  [pathOf(TokenService.method.invalidateToken), { permission: "invalidate", limit: "reports" }],
  [pathOf(TokenService.method.watchToken), { permission: "watch", limit: "streams" }],
  [pathOf(AdminService.method.getStatus), { permission: "admin" }],
  [pathOf(AdminService.method.forceRefresh), { permission: "admin", impliedKind: "access_token" }],
  [pathOf(AdminService.method.clearQuota), { permission: "admin" }],
]);

/** Any other method (a service added later) needs admin: fail closed. */
const UNKNOWN_METHOD: MethodRule = { permission: "admin" };

function pathOf(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/**
 * Wraps every method of a service implementation with the broker's access
 * control. Per call, in order:
 *
 * 1. the caller's address (see `callerAddress` for X-Forwarded-For) must be in
 *    `allowCidrs` when that is set — else PERMISSION_DENIED;
 * 2. the caller is identified by `authorization: Bearer <api key>` (its
 *    SHA-256 compared in constant time with every client's) or else by the
 *    verified client certificate's CN — else UNAUTHENTICATED. With no clients
 *    configured every caller is the anonymous client, with every permission
 *    and no limits;
 * 3. the method's permission (GetToken get, WatchToken watch, InvalidateToken
 *    invalidate, every AdminService method and any unknown method admin) and
 *    the request's app_id and kind must be the client's — else
 *    PERMISSION_DENIED. Kinds this broker does not know are left to the
 *    handler, which rejects them as INVALID_ARGUMENT;
 * 4. GetToken takes a token from the client's bucket, InvalidateToken from
 *    a separate, smaller one (a report can cause a WeChat call), and
 *    WatchToken holds one of its stream slots until the stream ends however
 *    it ends — else RESOURCE_EXHAUSTED.
 *
 * Every refusal and every admin call is written to `audit`. The client id is
 * put into the handler context under `clientKey`. Throws at once when the
 * policy is invalid or the service has client- or bidi-streaming methods.
 */
export function secure<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  o: SecureOptions,
): ServiceImpl<S> {
  const refusals = o.refusals ?? new RefusalLog({ audit: o.audit, clock: o.clock });
  const gate = new Gate(compilePolicy(o.policy), o.clock, o.audit, refusals);
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const name = method.localName as keyof ServiceImpl<S>;
    const fn = impl[name] as unknown as (req: unknown, ctx: HandlerContext) => unknown;
    const rule = RULES.get(pathOf(method)) ?? UNKNOWN_METHOD;
    const audited = rule.permission === "admin";
    switch (method.methodKind) {
      case "unary":
        wrapped[name as string] = async (req: unknown, ctx: HandlerContext) => {
          const caller = gate.admit(method, rule, req, ctx);
          if (!audited) return fn(req, ctx);
          try {
            const res = await fn(req, ctx);
            gate.adminCall(caller, undefined);
            return res;
          } catch (err) {
            gate.adminCall(caller, err);
            throw err;
          }
        };
        break;
      case "server_streaming":
        wrapped[name as string] = (req: unknown, ctx: HandlerContext) =>
          observeStream(() => {
            const caller = gate.admit(method, rule, req, ctx);
            const release = rule.limit === "streams" ? gate.openStream(caller) : () => {};
            return {
              source: fn(req, ctx) as AsyncIterable<unknown>,
              end(outcome) {
                release();
                if (audited) gate.adminCall(caller, outcome);
              },
            };
          }, CANCELED);
        break;
      default:
        // Their requests are many messages, each with its own app_id; a check
        // of the first would let the rest through.
        throw new Error(
          `secure() cannot guard ${pathOf(method)}: client- and bidi-streaming methods are not supported`,
        );
    }
  }
  return wrapped as ServiceImpl<S>;
}

const CANCELED = new ConnectError("stream ended by the client", Code.Canceled);

/** One call, as far as it is known. */
interface Scene {
  readonly method: string;
  readonly address: CallerAddress;
  readonly app: string | undefined;
  readonly kind: CredentialKind | undefined;
  readonly tlsIdentity: string | undefined;
}

interface Caller extends Scene {
  readonly client: CompiledClient;
}

type PeerWithTls = Peer & { readonly tlsIdentity?: string };

class Gate {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #reportBuckets = new Map<string, TokenBucket>();
  readonly #streams = new Map<string, number>();

  constructor(
    readonly policy: CompiledPolicy,
    readonly clock: Clock,
    readonly audit: Logger,
    readonly refusals: RefusalLog,
  ) {}

  /** Steps 1-3, and the rate limit of step 4. Throws the refusal. */
  admit(method: DescMethod, rule: MethodRule, req: unknown, ctx: HandlerContext): Caller {
    const peer = ctx.values.get(peerKey) as PeerWithTls | undefined;
    // Headers are built on first access; without trusted proxies XFF is ignored anyway.
    const forwardedFor =
      this.policy.trustedProxies.length > 0 ? ctx.requestHeader.get("x-forwarded-for") : null;
    const address = callerAddress(peer?.address, forwardedFor, this.policy.trustedProxies);
    const scene: Scene = {
      method: method.name,
      address,
      ...targetOf(req, rule),
      tlsIdentity: peer?.tlsIdentity || undefined,
    };
    if (this.policy.allow.length > 0 && !inAnyCidr(address.bytes, this.policy.allow)) {
      const via = address.via === undefined ? "" : ` (forwarded by ${address.via})`;
      throw this.refuse(
        "address_denied",
        Code.PermissionDenied,
        `address ${printable(address.address)}${via} is not allowed to use this broker`,
        scene,
      );
    }
    const client = this.identify(ctx, scene);
    ctx.values.set(clientKey, client.id);
    ctx.values.set(permissionsKey, client.permissions);
    const caller: Caller = { ...scene, client };
    this.authorize(rule, caller);
    if (rule.limit === "rate" || rule.limit === "reports") this.takeToken(caller, rule.limit);
    return caller;
  }

  identify(ctx: HandlerContext, scene: Scene): CompiledClient {
    if (this.policy.clients.length === 0) return this.policy.anonymous;
    const header = ctx.requestHeader.get("authorization");
    if (header !== null) {
      const key = /^bearer[ \t]+(\S+)$/i.exec(header.trim())?.[1];
      if (key === undefined) {
        throw this.refuse(
          "auth_failure",
          Code.Unauthenticated,
          "the authorization header must be 'Bearer <api key>'",
          scene,
        );
      }
      const client = this.byKey(key);
      if (client) return client;
      throw this.refuse(
        "auth_failure",
        Code.Unauthenticated,
        "unknown API key: no client of this broker has it",
        scene,
      );
    }
    if (scene.tlsIdentity !== undefined) {
      const client = this.policy.clients.find((c) => c.tlsIdentity === scene.tlsIdentity);
      if (client) return client;
      throw this.refuse(
        "auth_failure",
        Code.Unauthenticated,
        `the client certificate '${printable(scene.tlsIdentity)}' is not a configured client; send authorization: Bearer <api key> or a client certificate`,
        scene,
      );
    }
    throw this.refuse(
      "auth_failure",
      Code.Unauthenticated,
      "this broker requires authentication: send authorization: Bearer <api key> or a client certificate",
      scene,
    );
  }

  /**
   * The client whose key hash equals the key's. Every configured hash is
   * compared, in constant time, whichever matches: the time taken does not
   * tell how much of a guess was right or which client it belongs to.
   */
  byKey(key: string): CompiledClient | undefined {
    const digest = createHash("sha256").update(key, "utf8").digest();
    let found: CompiledClient | undefined;
    for (const client of this.policy.clients) {
      if (client.keyHash !== undefined && timingSafeEqual(digest, client.keyHash)) found = client;
    }
    return found;
  }

  authorize(rule: MethodRule, caller: Caller): void {
    const { client, app, kind } = caller;
    const who = `client '${client.id}'`;
    const permission = rule.permission;
    const deny = (message: string) =>
      this.refuse("permission_denied", Code.PermissionDenied, message, caller, client.id);
    if (!client.permissions.has(permission)) {
      throw deny(
        `${who} does not have the '${permission}' permission (needed for ${caller.method})`,
      );
    }
    if (client.apps !== undefined) {
      // A client limited to some apps must name one: an empty app_id (GetStatus)
      // would show it every app.
      if (app === undefined || app === "") {
        throw deny(
          `${who} has '${permission}' permission only for its own apps and this request names none; set app_id`,
        );
      } else if (!client.apps.has(app)) {
        throw deny(
          `${who} does not have '${permission}' permission for ${namedApp(app)}; the broker's operator can add the app to the client's apps`,
        );
      }
    }
    if (client.kinds !== undefined && kind !== undefined && !client.kinds.has(kind)) {
      throw deny(
        `${who} does not have '${permission}' permission for kind ${kind} of ${namedApp(app ?? "")} (its kinds: ${[...client.kinds].join(", ")})`,
      );
    }
  }

  takeToken(caller: Caller, which: "rate" | "reports"): void {
    const { client } = caller;
    if (client.limits === undefined) return;
    const { ratePerSecond, burst } =
      which === "rate"
        ? client.limits
        : { ratePerSecond: client.limits.reportRatePerSecond, burst: client.limits.reportBurst };
    const buckets = which === "rate" ? this.#buckets : this.#reportBuckets;
    let bucket = buckets.get(client.id);
    if (!bucket) {
      bucket = new TokenBucket(ratePerSecond, burst, this.clock.now());
      buckets.set(client.id, bucket);
    }
    const waitMs = bucket.take(this.clock.now());
    if (waitMs > 0) {
      throw this.refuse(
        "rate_limited",
        Code.ResourceExhausted,
        `${which === "rate" ? "rate limit" : "InvalidateToken rate limit"} of ${ratePerSecond}/s exceeded for client '${client.id}'; retry after ${waitMs} ms`,
        caller,
        client.id,
      );
    }
  }

  /** Takes one of the client's stream slots; the returned function gives it back (once). */
  openStream(caller: Caller): () => void {
    const { client } = caller;
    if (client.limits === undefined) return () => {};
    const max = client.limits.maxWatchStreams;
    const open = this.#streams.get(client.id) ?? 0;
    if (open >= max) {
      throw this.refuse(
        "stream_limited",
        Code.ResourceExhausted,
        `client '${client.id}' is at its limit of ${max} concurrent ${caller.method} streams; close one before opening another`,
        caller,
        client.id,
      );
    }
    this.#streams.set(client.id, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#streams.get(client.id) ?? 1) - 1;
      if (left > 0) this.#streams.set(client.id, left);
      else this.#streams.delete(client.id);
    };
  }

  adminCall(caller: Caller, err: unknown): void {
    this.audit.info(
      { ...auditFields("admin_call", caller, caller.client.id), outcome: codeName(err) },
      `security: admin call ${caller.method}`,
    );
  }

  refuse(
    event: SecurityEvent,
    code: Code,
    message: string,
    scene: Scene,
    client: string | null = null,
  ): ConnectError {
    const error = new ConnectError(message, code);
    const { app, kind, ...identity } = auditFields(event, scene, client);
    this.refusals.record(
      identity,
      { app, kind, code: codeName(error), detail: message },
      `security: ${event}`,
    );
    return error;
  }
}

/** The app and kind a request names, as far as it names them. */
function targetOf(
  req: unknown,
  rule: MethodRule,
): { app: string | undefined; kind: CredentialKind | undefined } {
  const fields = (typeof req === "object" && req !== null ? req : {}) as {
    appId?: unknown;
    kind?: unknown;
  };
  const app = typeof fields.appId === "string" ? fields.appId : undefined;
  let kind = rule.impliedKind;
  if (typeof fields.kind === "number") {
    try {
      kind = kindFromProto(fields.kind as TokenKind);
    } catch {
      // Unspecified or unknown: no credential has it, and the handler, which
      // maps kinds with the same function, rejects it as INVALID_ARGUMENT.
      kind = undefined;
    }
  }
  return { app, kind };
}

function auditFields(event: SecurityEvent, scene: Scene, client: string | null) {
  return {
    event,
    client,
    address: printable(scene.address.address),
    ...(scene.address.via === undefined ? {} : { via: scene.address.via }),
    ...(scene.tlsIdentity === undefined ? {} : { tlsIdentity: printable(scene.tlsIdentity) }),
    method: scene.method,
    app: scene.app === undefined ? undefined : auditedApp(scene.app),
    kind: scene.kind,
  };
}

/** Text from a request, safe to put into a message: printable ASCII, at most 100 characters. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}

function codeName(err: unknown): string {
  if (err === undefined) return "ok";
  const code = err instanceof ConnectError ? err.code : Code.Unknown;
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
