import { type Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { CredentialKind } from "../../core/credential.js";
import { auditedApp } from "../../security/audit-values.js";
import type { CallerAddress } from "../../security/ip.js";
import type { CompiledClient } from "../../security/policy.js";
import type { RefusalLog } from "../../security/refusal-log.js";
import { type AnyRequest, codeName } from "./outcome.js";

/** Audit `event` values. */
export type SecurityEvent =
  | "address_denied"
  | "auth_failure"
  | "permission_denied"
  | "rate_limited"
  | "stream_limited"
  | "admin_call";

/** One call, as far as it is known. */
export interface Scene {
  readonly method: string;
  readonly address: CallerAddress;
  readonly app: string | undefined;
  readonly kind: CredentialKind | undefined;
  readonly tlsIdentity: string | undefined;
}

/** A call whose client is known. */
export interface Caller extends Scene {
  readonly client: CompiledClient;
}

/** Set by the authenticate interceptor for the ones after it (authorize, limits, audit). */
const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "authenticated caller",
});

export function setCaller(req: AnyRequest, caller: Caller): void {
  req.contextValues.set(callerKey, caller);
}

/**
 * The caller authenticate found. Without one the chain is built wrong (an
 * interceptor before authenticate): the call fails rather than pass unchecked.
 */
export function callerOf(req: AnyRequest): Caller {
  const caller = req.contextValues.get(callerKey);
  if (caller === undefined) {
    throw new Error(`no authenticated caller for ${req.method.name}: authenticate must run first`);
  }
  return caller;
}

/** Records a refusal (aggregated by `refusals`) and returns the error to throw. */
export function refuse(
  refusals: RefusalLog,
  event: SecurityEvent,
  code: Code,
  message: string,
  scene: Scene,
  client: string | null = null,
): ConnectError {
  const error = new ConnectError(message, code);
  const { app, kind, ...identity } = auditFields(event, scene, client);
  refusals.record(
    identity,
    { app, kind, code: codeName(error), detail: message },
    `security: ${event}`,
  );
  return error;
}

export function auditFields(event: SecurityEvent, scene: Scene, client: string | null) {
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
export function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}
