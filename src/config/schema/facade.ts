import type { z } from "zod";
import { isLoopbackHost } from "../../shared/loopback.js";
import { bool, num, section } from "../../shared/schema.js";
import { address, type ListenAddress } from "./listen.js";

/**
 * The WeChat-compatible façade (src/facade): WeChat's credential endpoints
 * answered with the broker's credentials, so SDKs pointed at the broker
 * through their API-host setting share its tokens instead of fetching their own.
 */
export function facadeSchema() {
  return section({
    /** Serve the façade at all. */
    enabled: bool().prefault(true),
    /** host:port of a listener of its own (HTTP/1.1 and h2c; TLS with security.tls); absent: the Connect port. */
    listen: address().optional(),
    /** Callers may prove themselves with the app's AppSecret, as SDKs do; false: API keys only. */
    appSecrets: bool().prefault(true),
    /**
     * Forward other WeChat API calls carrying an access token the broker
     * issued to WeChat, and learn from WeChat's answer when it rejects the
     * token; false: only the credential endpoints are served.
     */
    forward: bool().prefault(true),
    /** How long a forwarded call may take (business APIs can be slow). */
    forwardTimeoutMs: num(100, 600_000).prefault(30_000),
  });
}

export type FacadeConfig = z.output<ReturnType<typeof facadeSchema>>;

/**
 * A façade listener of its own beyond loopback without TLS would carry
 * AppSecrets, API keys and tokens in cleartext: refused unless
 * security.allowPlaintextNonLoopback says TLS ends in front of the broker.
 */
export function checkFacadeExposure(
  config: {
    readonly facade: { readonly enabled: boolean; readonly listen?: ListenAddress | undefined };
    readonly security: { readonly tls?: unknown; readonly allowPlaintextNonLoopback: boolean };
  },
  ctx: z.RefinementCtx,
): void {
  const { facade, security } = config;
  if (!facade.enabled || facade.listen === undefined || isLoopbackHost(facade.listen.host)) return;
  if (security.tls !== undefined || security.allowPlaintextNonLoopback) return;
  ctx.addIssue({
    code: "custom",
    path: ["facade", "listen"],
    message:
      `${facade.listen.host} is not a loopback address and security.tls is not set: AppSecrets, API keys ` +
      "and tokens would cross the network in cleartext. Configure security.tls, or set " +
      "security.allowPlaintextNonLoopback: true if TLS ends in front of the broker (a proxy or mesh)",
  });
}
