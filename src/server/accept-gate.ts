import * as net from "node:net";
import type { RefusalLog } from "../security/refusal-log.js";

/**
 * The IP allowlist applied when a connection is accepted, before TLS or any
 * HTTP/2 state exists: a peer outside costs one accept and one close, however
 * many streams it meant to open, and reaches no service (health and reflection
 * included). Both listeners use one gate, so refusals are audited once per
 * peer and window across them.
 */
export class AcceptGate {
  readonly #allow = new net.BlockList();

  /**
   * @param cidrs who may connect: `security.allowCidrs` plus
   *   `security.trustedProxies` (a proxy forwards callers that the per-call
   *   check then judges by X-Forwarded-For).
   */
  constructor(
    cidrs: readonly string[],
    private readonly refusals: RefusalLog,
  ) {
    for (const cidr of cidrs) {
      const [address = "", prefix] = cidr.trim().split("/");
      const type = net.isIPv4(address) ? "ipv4" : "ipv6";
      const bits = prefix === undefined ? (type === "ipv4" ? 32 : 128) : Number(prefix);
      this.#allow.addSubnet(address, bits, type);
    }
  }

  /** True if the socket may stay; else destroys it and audits the refusal. */
  admit(socket: net.Socket): boolean {
    const address = socket.remoteAddress ?? "unknown";
    if (this.#allows(address)) return true;
    socket.destroy();
    this.refusals.record(
      { event: "connection_refused", address },
      { port: socket.localPort },
      "security: connection from outside security.allowCidrs refused at accept",
    );
    return false;
  }

  #allows(address: string): boolean {
    try {
      return this.#allow.check(address, net.isIPv4(address) ? "ipv4" : "ipv6");
    } catch {
      return false; // not an IP address (a socket already gone): nothing to allow
    }
  }
}
