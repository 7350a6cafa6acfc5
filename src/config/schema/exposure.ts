import type { z } from "zod";
import type { ClientPolicy } from "../../security/policy.js";
import { isLoopbackHost } from "../../shared/loopback.js";
import type { ListenAddress } from "./listen.js";
import type { MetricsConfig } from "./metrics.js";

/** The parts of a config that decide who can reach what. */
export interface Exposure {
  readonly listen: { readonly grpc: ListenAddress; readonly connect: ListenAddress };
  readonly metrics: MetricsConfig;
  readonly security: {
    readonly tls?: { readonly requireClientCert: boolean } | undefined;
    readonly clients: readonly Pick<ClientPolicy, "apiKeySha256">[];
    readonly allowUnauthenticatedNonLoopback: boolean;
    readonly allowPlaintextNonLoopback: boolean;
  };
}

const LISTENERS = ["grpc", "connect"] as const;

/**
 * The RPC listeners that would carry API keys (and the tokens they fetch) in
 * cleartext beyond this machine: not loopback, no TLS, and some client has a
 * key. Refused by the schema unless security.allowPlaintextNonLoopback, and
 * then warned about at every start.
 */
export function plaintextListeners(config: Exposure): Array<"grpc" | "connect"> {
  if (config.security.tls || !config.security.clients.some((c) => c.apiKeySha256)) return [];
  return LISTENERS.filter((name) => !isLoopbackHost(config.listen[name].host));
}

/** Refuses listeners that would hand tokens, keys or metrics to anyone on the network. */
export function checkExposure(config: Exposure, ctx: z.RefinementCtx): void {
  const refuse = (path: string[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const { security, listen } = config;
  // Without authentication, tokens go to anyone who can connect: loopback only unless opted in.
  if (security.clients.length === 0 && !security.allowUnauthenticatedNonLoopback) {
    for (const name of LISTENERS) {
      if (isLoopbackHost(listen[name].host)) continue;
      refuse(
        ["listen", name],
        `${listen[name].host} is not a loopback address and no clients are configured: anyone who can reach it could ` +
          "read every token. Configure security.clients (API keys or client certificates), or set " +
          "security.allowUnauthenticatedNonLoopback: true if a trusted network really protects it",
      );
    }
  }
  if (!security.allowPlaintextNonLoopback) {
    for (const name of plaintextListeners(config)) {
      refuse(
        ["listen", name],
        `${listen[name].host} is not a loopback address and security.tls is not set: API keys and ` +
          "tokens would cross the network in cleartext. Configure security.tls, or set " +
          "security.allowPlaintextNonLoopback: true if TLS ends in front of the broker (a proxy or mesh)",
      );
    }
  }
  checkMetrics(config, refuse);
}

/** The metrics listener reveals app ids, quota use and refresh timing: loopback, or TLS and a key. */
function checkMetrics(
  { metrics: m, security }: Exposure,
  refuse: (path: string[], message: string) => void,
): void {
  if (m.tls && !security.tls)
    refuse(["metrics", "tls"], "needs security.tls (the metrics listener uses its files)");
  if (!m.listen || isLoopbackHost(m.listen.host) || m.allowUnprotectedNonLoopback) return;
  const clientCerts = security.tls?.requireClientCert === true;
  if (m.tls && (m.apiKeySha256 !== undefined || clientCerts)) return;
  const missing = m.tls ? "metrics.apiKeySha256" : "TLS (security.tls with metrics.tls)";
  refuse(
    ["metrics", "listen"],
    `${m.listen.host} is not a loopback address and the metrics listener has no ${missing}: anyone ` +
      "who can reach it could read app ids, quota use and refresh timing. Configure security.tls and " +
      "metrics.apiKeySha256 (or client certificates with security.tls.requireClientCert), or set " +
      "metrics.allowUnprotectedNonLoopback: true if a trusted network really protects it",
  );
}
