import type { DescMethod } from "@bufbuild/protobuf";
import { AdminService } from "../../../gen/tokenbroker/v1/admin_service_pb.js";
import { OAuthService } from "../../../gen/tokenbroker/v1/oauth_service_pb.js";
import { type TokenKind, TokenService } from "../../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKind } from "../../core/credential.js";
import type { Permission } from "../../security/policy.js";
import { kindFromProto } from "../kinds.js";

/** What a method needs. */
export interface MethodRule {
  readonly permission: Permission;
  /** A permission that also admits the call (AckToken: `get` besides `watch`). */
  readonly orPermission?: Permission;
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
  // Whoever may hold the credential may say which version it holds.
  [
    pathOf(TokenService.method.ackToken),
    { permission: "watch", orPermission: "get", limit: "rate" },
  ],
  [pathOf(AdminService.method.getStatus), { permission: "admin" }],
  [pathOf(AdminService.method.forceRefresh), { permission: "admin", impliedKind: "access_token" }],
  [pathOf(AdminService.method.clearQuota), { permission: "admin" }],
  [
    pathOf(OAuthService.method.exchangeCode),
    { permission: "oauth", limit: "rate", impliedKind: "user_access_token" },
  ],
  [
    pathOf(OAuthService.method.forgetUser),
    { permission: "oauth", impliedKind: "user_access_token" },
  ],
]);

/** Any other method (a service added later) needs admin: fail closed. */
const UNKNOWN_METHOD: MethodRule = { permission: "admin" };

/** Looked up once per method descriptor, not per call. */
const byMethod = new WeakMap<DescMethod, MethodRule>();

/** The rule of `method`: admin for any method not listed. */
export function ruleOf(method: DescMethod): MethodRule {
  let rule = byMethod.get(method);
  if (rule === undefined) {
    rule = RULES.get(pathOf(method)) ?? UNKNOWN_METHOD;
    byMethod.set(method, rule);
  }
  return rule;
}

function pathOf(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** The app and kind a request names, as far as it names them. */
export function targetOf(
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
