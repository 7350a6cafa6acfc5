import type { BrokerConfig } from "./config/config.js";
import { plaintextListeners } from "./config/parse-config.js";
import type { Logger } from "./shared/logger.js";

/**
 * What an operator must hear at every start, so a risky setting is never
 * forgotten: no authentication, API keys over plaintext, an unprotected
 * metrics listener.
 */
export function warnAtStart(
  config: BrokerConfig,
  logger: Logger,
  urls: { grpc: string; connect: string; metrics?: string | undefined },
): void {
  const { grpc, connect } = urls;
  if (config.security.clients.length === 0) {
    logger.warn(
      { grpc, connect },
      "NO AUTHENTICATION: every caller that can reach these listeners may read and refresh every token. " +
        "Configure security.clients (API keys or client certificates) before exposing the broker.",
    );
  }
  // Allowed by security.allowPlaintextNonLoopback.
  const plaintext = plaintextListeners(config);
  if (plaintext.length > 0) {
    logger.warn(
      { listeners: plaintext, grpc, connect },
      "PLAINTEXT WITH API KEYS: these listeners are not on loopback and have no TLS, so API keys and " +
        "tokens cross the network in cleartext (security.allowPlaintextNonLoopback is set). Make sure TLS " +
        "ends in front of the broker, or configure security.tls.",
    );
  }
  if (urls.metrics && config.metrics.allowUnprotectedNonLoopback) {
    logger.warn(
      { metrics: urls.metrics },
      "UNPROTECTED METRICS: the metrics listener may be reachable beyond this machine without TLS or a key " +
        "(metrics.allowUnprotectedNonLoopback is set); it shows app ids, quota use and refresh timing.",
    );
  }
}
