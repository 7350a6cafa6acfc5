import { createHash, timingSafeEqual } from "node:crypto";
import { Code, type Interceptor } from "@connectrpc/connect";
import { clientKey, identifyCallerKey, permissionsKey } from "../../security/client-context.js";
import { type CallerAddress, callerAddress, inAnyCidr } from "../../security/ip.js";
import type { CompiledClient, CompiledPolicy } from "../../security/policy.js";
import type { RefusalLog } from "../../security/refusal-log.js";
import { type Peer, peerKey } from "../../server/peer.js";
import { requestMessage } from "../../server/request-message.js";
import type { AnyRequest } from "./outcome.js";
import { ruleOf, targetOf } from "./rules.js";
import { type Caller, printable, refuse, type Scene, setCaller } from "./scene.js";

/**
 * Who is calling, before anything else runs:
 *
 * 1. the caller's address (see `callerAddress` for X-Forwarded-For) must be in
 *    `allowCidrs` when that is set — else PERMISSION_DENIED;
 * 2. the caller is identified by the front end that vouches for it
 *    (`identifyCallerKey`, set in-process by the WeChat façade), else by
 *    `authorization: Bearer <api key>` (its
 *    SHA-256 compared in constant time with every client's) or else by the
 *    verified client certificate's CN — else UNAUTHENTICATED. With no clients
 *    configured every caller is the anonymous client, with every permission
 *    and no limits.
 *
 * The client's id and permissions go into the context (`clientKey`,
 * `permissionsKey`) for the handler, and the caller for the interceptors
 * after this one. Refusals are written to `refusals`.
 */
export function authenticate(policy: CompiledPolicy, refusals: RefusalLog): Interceptor {
  const authFailure = (message: string, scene: Scene) =>
    refuse(refusals, "auth_failure", Code.Unauthenticated, message, scene);

  const identify = (req: AnyRequest, scene: Scene): CompiledClient => {
    // A front end that authenticated the caller its own way (the WeChat façade).
    const external = req.contextValues.get(identifyCallerKey);
    if (external !== undefined) {
      const found = external();
      if (typeof found === "string") throw authFailure(found, scene);
      return found;
    }
    if (policy.clients.length === 0) return policy.anonymous;
    const header = req.header.get("authorization");
    if (header !== null) {
      const key = /^bearer[ \t]+(\S+)$/i.exec(header.trim())?.[1];
      if (key === undefined) {
        throw authFailure("the authorization header must be 'Bearer <api key>'", scene);
      }
      const client = byKey(policy, key);
      if (client) return client;
      throw authFailure("unknown API key: no client of this broker has it", scene);
    }
    if (scene.tlsIdentity !== undefined) {
      const client = policy.clients.find((c) => c.tlsIdentity === scene.tlsIdentity);
      if (client) return client;
      throw authFailure(
        `the client certificate '${printable(scene.tlsIdentity)}' is not a configured client; send authorization: Bearer <api key> or a client certificate`,
        scene,
      );
    }
    throw authFailure(
      "this broker requires authentication: send authorization: Bearer <api key> or a client certificate",
      scene,
    );
  };

  const admit = (req: AnyRequest): Caller => {
    const peer = req.contextValues.get(peerKey);
    // Headers are built on first access; without trusted proxies XFF is ignored anyway.
    const forwardedFor =
      policy.trustedProxies.length > 0 ? req.header.get("x-forwarded-for") : null;
    const address = addressOf(peer, forwardedFor, policy);
    const { app, kind } = targetOf(requestMessage(req), ruleOf(req.method));
    const tlsIdentity = peer?.tlsIdentity || undefined;
    const scene: Scene = { method: req.method.name, address, app, kind, tlsIdentity };
    if (policy.allow.length > 0 && !inAnyCidr(address.ip, policy.allow)) {
      const via = address.via === undefined ? "" : ` (forwarded by ${address.via})`;
      throw refuse(
        refusals,
        "address_denied",
        Code.PermissionDenied,
        `address ${printable(address.address)}${via} is not allowed to use this broker`,
        scene,
      );
    }
    const client = identify(req, scene);
    req.contextValues.set(clientKey, client.id);
    req.contextValues.set(permissionsKey, client.permissions);
    return { method: scene.method, address, app, kind, tlsIdentity, client };
  };

  return (next) => (req) => {
    try {
      setCaller(req, admit(req));
    } catch (err) {
      return Promise.reject(err);
    }
    return next(req);
  };
}

/**
 * Where a call comes from. A gRPC connection's calls share one Peer object,
 * so without a forwarded-for header its address is parsed once per connection.
 */
const peerAddresses = new WeakMap<Peer, CallerAddress>();
function addressOf(
  peer: Peer | undefined,
  forwardedFor: string | null,
  policy: CompiledPolicy,
): CallerAddress {
  if (peer === undefined || forwardedFor !== null) {
    return callerAddress(peer?.address, forwardedFor, policy.trustedProxies);
  }
  let address = peerAddresses.get(peer);
  if (address === undefined) {
    address = callerAddress(peer.address, null, policy.trustedProxies);
    peerAddresses.set(peer, address);
  }
  return address;
}

/**
 * The client whose key hash equals the key's. Every configured hash is
 * compared, in constant time, whichever matches: the time taken does not
 * tell how much of a guess was right or which client it belongs to.
 */
function byKey(policy: CompiledPolicy, key: string): CompiledClient | undefined {
  const digest = createHash("sha256").update(key, "utf8").digest();
  let found: CompiledClient | undefined;
  for (const client of policy.clients) {
    if (client.keyHash !== undefined && timingSafeEqual(digest, client.keyHash)) found = client;
  }
  return found;
}
