import { Cluster, type Redis } from "ioredis";
import type { Logger } from "../../shared/logger.js";
import { quitOrDisconnect, type RedisClient } from "./connection.js";

/** Pause before the subscriber of a Cluster tries another node. */
const CLUSTER_RESUBSCRIBE_DELAY_MS = 200;

export interface UpdateSubscriberOptions {
  readonly client: RedisClient;
  readonly channel: string;
  readonly logger: Logger;
  readonly onMessage: (message: string) => void;
  /** A connection subscribed after an earlier one had: messages may have been missed. */
  readonly onResubscribed: () => void;
}

/**
 * The dedicated pub/sub connection. It subscribes itself on every `ready`
 * (ioredis' auto-resubscribe is off) so it knows when a subscription is
 * confirmed again after a gap, which ioredis does not report.
 *
 * Standalone and Sentinel: a duplicate of the client, which reconnects on
 * its own (to the new master after a failover). Cluster: a plain connection
 * to one node, since a PUBLISH reaches every node of a cluster; when that
 * node stays unreachable, it moves to another node the cluster client knows.
 */
export class UpdateSubscriber {
  readonly firstSubscribe: Promise<void>;
  readonly #o: UpdateSubscriberOptions;
  #resolveFirst: () => void = () => {};
  #connection: Redis | undefined;
  #subscribedBefore = false;
  #linkUp = false;
  #closed = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #nodeTurn = 0;

  constructor(o: UpdateSubscriberOptions) {
    this.#o = o;
    this.firstSubscribe = new Promise((resolve) => {
      this.#resolveFirst = resolve;
    });
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#resolveFirst();
    clearTimeout(this.#retry);
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) await quitOrDisconnect(connection);
  }

  #open(): void {
    if (this.#closed) return;
    const { client } = this.#o;
    if (!(client instanceof Cluster)) {
      this.#attach(
        client.duplicate({
          autoResubscribe: false,
          connectionName: `${client.options.connectionName ?? "token-broker"}:updates`,
        }),
      );
      return;
    }
    const nodes = client.nodes("all");
    if (nodes.length === 0) {
      // The cluster client has not discovered its nodes yet.
      this.#retryLater();
      return;
    }
    const node = nodes[this.#nodeTurn++ % nodes.length] as Redis;
    this.#attach(
      node.duplicate({
        autoResubscribe: false,
        lazyConnect: false,
        readOnly: false,
        connectionName: `${node.options.connectionName ?? "token-broker"}:updates`,
        // Give up on this node after a few attempts ("end"), then try another.
        retryStrategy: (times: number) => (times > 3 ? null : 100 * times),
      }),
    );
  }

  #retryLater(): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#open(), CLUSTER_RESUBSCRIBE_DELAY_MS);
    this.#retry.unref();
  }

  #attach(connection: Redis): void {
    this.#connection = connection;
    const { channel, logger } = this.#o;
    connection.on("ready", () => this.#subscribe(connection));
    connection.on("message", (from: string, message: string) => {
      if (from === channel && connection === this.#connection) this.#o.onMessage(message);
    });
    // ioredis reports every failed reconnect attempt; the "close" below says it once.
    connection.on("error", (err: Error) =>
      logger.debug({ err: err.message }, "update channel error"),
    );
    connection.on("close", () => {
      if (!this.#linkUp || connection !== this.#connection) return;
      this.#linkUp = false;
      logger.warn("lost the credential update channel; will resync after reconnecting");
    });
    connection.on("end", () => {
      if (connection !== this.#connection || this.#closed) return;
      this.#retryLater();
    });
  }

  #subscribe(connection: Redis): void {
    connection.subscribe(this.#o.channel).then(
      () => {
        if (connection !== this.#connection || this.#closed) return;
        this.#linkUp = true;
        if (!this.#subscribedBefore) {
          this.#subscribedBefore = true;
          this.#resolveFirst();
          return;
        }
        this.#o.logger.info("credential update channel back; resyncing");
        this.#o.onResubscribed();
      },
      (err: unknown) => {
        if (connection !== this.#connection || this.#closed) return;
        this.#o.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "could not subscribe to credential updates; reconnecting",
        );
        connection.disconnect(true);
      },
    );
  }
}
