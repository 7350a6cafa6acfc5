import type * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { RefusalLog } from "../security/refusal-log.js";
import { tupleOf } from "./tls-acceptor.js";

export interface GrpcConnectionsOptions {
  /** Destroy a connection that stalled a request and has had no call in flight for this long. */
  readonly idleMs: number;
  /** Answer DEADLINE_EXCEEDED to a call whose request has not fully arrived in this time. */
  readonly requestTimeoutMs: number;
  /** Where such stalled requests are audited, aggregated per peer. */
  readonly refusals: RefusalLog;
}

/** One accepted connection of the gRPC port. */
interface Connection {
  readonly tcp: net.Socket;
  /** Calls started and not yet answered or cancelled. */
  calls: number;
  /** A request on it did not arrive in time: the peer may hold half-open streams. */
  stalled: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * The gRPC port's connections, which the broker accepts itself and injects
 * into grpc-js. grpc-js' own idle timeout counts open HTTP/2 streams, and a
 * stream whose client never finishes its request stays open even after
 * grpc-js answered it, so a peer could hold a connection (and its streams'
 * memory) for ever. Here a call counts from its first HEADERS until grpc-js
 * sends its status or sees it cancelled, through a server interceptor; a
 * connection that stalled a request and then has no such call for `idleMs`
 * is destroyed, whatever streams its client left half-open. Well-behaved
 * connections are left to grpc-js' own idle timeout, which closes them
 * gracefully (GOAWAY): destroying a connection a client is about to reuse
 * would fail its next calls.
 */
export class GrpcConnections {
  readonly #byTuple = new Map<string, Connection>();

  constructor(private readonly o: GrpcConnectionsOptions) {}

  /** Tracks an accepted connection (before TLS); forgets it when it closes. */
  add(tcp: net.Socket): void {
    const key = tupleOf(tcp);
    const conn: Connection = { tcp, calls: 0, stalled: false, idleTimer: undefined };
    this.#byTuple.set(key, conn);
    this.#armIdle(conn);
    tcp.once("close", () => {
      clearTimeout(conn.idleTimer);
      this.#byTuple.delete(key);
    });
  }

  /** Every tracked TCP socket (for a forced close). */
  sockets(): IterableIterator<net.Socket> {
    return [...this.#byTuple.values()].map((c) => c.tcp)[Symbol.iterator]();
  }

  /**
   * The server interceptor: counts the call on its connection and answers
   * DEADLINE_EXCEEDED when its whole request (every message, then the
   * client's half-close) has not arrived in time.
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    const conn = this.#byTuple.get(tupleOf(call.getConnectionInfo()));
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      if (conn && --conn.calls === 0) this.#armIdle(conn);
    };
    const arrived = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        if (conn) {
          conn.calls++;
          clearTimeout(conn.idleTimer);
        }
        const ms = this.o.requestTimeoutMs;
        timer = setTimeout(() => {
          if (conn) conn.stalled = true;
          const address = call.getConnectionInfo().remoteAddress ?? "unknown";
          this.o.refusals.record(
            { event: "request_timeout", address },
            { method: method.path, timeoutMs: ms, outcome: "deadline_exceeded" },
            "security: request did not arrive in time",
          );
          call.sendStatus({
            code: grpc.status.DEADLINE_EXCEEDED,
            details: `the request did not arrive within ${ms} ms`,
          });
          end();
        }, ms);
        next({
          onReceiveHalfClose: (nextHalfClose) => {
            arrived();
            nextHalfClose();
          },
          onCancel: end,
        });
      },
      sendStatus: (status, nextStatus) => {
        end();
        nextStatus(status);
      },
    });
  };

  #armIdle(conn: Connection): void {
    clearTimeout(conn.idleTimer);
    if (!conn.stalled) return;
    conn.idleTimer = setTimeout(() => {
      if (conn.calls === 0) conn.tcp.destroy();
    }, this.o.idleMs).unref();
  }
}
