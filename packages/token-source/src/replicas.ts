import { type BrokerConnection, connectTo } from "./connection.js";
import type { TokenSourceCredentials } from "./options.js";

/**
 * The broker addresses, each with its connection, taken in turn: a stream
 * that ends or fails reconnects to the next one, so a dead or frozen replica
 * is left at once. The first is chosen at random, so that sources started
 * together spread over the replicas.
 */
export class Replicas {
  readonly #connections: BrokerConnection[];
  #next: number;

  constructor(
    addresses: readonly string[],
    private readonly credentials: TokenSourceCredentials,
    private readonly ping: { intervalMs: number; timeoutMs: number },
    random: () => number,
  ) {
    this.#connections = addresses.map((a) => connectTo(a, credentials, ping));
    this.#next = Math.floor(random() * addresses.length);
  }

  get size(): number {
    return this.#connections.length;
  }

  /** The next connection in turn. */
  take(): BrokerConnection {
    const c = this.#connections[this.#next % this.#connections.length] as BrokerConnection;
    this.#next = (this.#next + 1) % this.#connections.length;
    return c;
  }

  /**
   * Replaces a connection that stopped answering with a fresh one: its HTTP/2
   * session may be wedged, and later calls would queue behind it.
   */
  reset(stale: BrokerConnection): void {
    const i = this.#connections.indexOf(stale);
    if (i < 0) return;
    stale.close();
    this.#connections[i] = connectTo(stale.address, this.credentials, this.ping);
  }

  close(): void {
    for (const c of this.#connections) c.close();
  }
}
