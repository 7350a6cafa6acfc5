import { EventEmitter, on } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { peerKey } from "./peer.js";
import { registration, type ServiceRegistration } from "./registration.js";

/** grpc.health.v1 serving status (UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN). */
export const ServingStatus = HealthCheckResponse_ServingStatus;
export type ServingStatus = HealthCheckResponse_ServingStatus;

/**
 * Serving status per service name, `""` being the server as a whole. The
 * health service reads it; the composition root writes it (for example
 * NOT_SERVING while a dependency is down, and `drain()` on shutdown).
 */
export class HealthStatus {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #changes = new EventEmitter().setMaxListeners(0);
  #draining = false;

  /** Starts with the given statuses; by default the server as a whole is SERVING. */
  constructor(initial: Readonly<Record<string, ServingStatus>> = { "": ServingStatus.SERVING }) {
    for (const [service, status] of Object.entries(initial)) this.#statuses.set(service, status);
  }

  /** Sets a service's status. Once draining, every status stays NOT_SERVING. */
  set(service: string, status: ServingStatus): void {
    const effective = this.#draining ? ServingStatus.NOT_SERVING : status;
    if (this.#statuses.get(service) === effective) return;
    this.#statuses.set(service, effective);
    this.#changes.emit(eventName(service), effective);
  }

  /** The status of a known service, or undefined. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** A snapshot of every known service. */
  list(): ReadonlyMap<string, ServingStatus> {
    return new Map(this.#statuses);
  }

  /** Marks every service NOT_SERVING for good: the server is going away. Idempotent. */
  drain(): void {
    this.#draining = true;
    for (const service of this.#statuses.keys()) this.set(service, ServingStatus.NOT_SERVING);
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * The current status (SERVICE_UNKNOWN if unknown), then every change, until
   * `signal` aborts (the iteration then throws the abort reason).
   */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    // Subscribe before reading the current value so no change falls between.
    const changes = on(this.#changes, eventName(service), { signal });
    try {
      let last = this.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
      yield last;
      for await (const [status] of changes as AsyncIterable<[ServingStatus]>) {
        if (status !== last) {
          last = status;
          yield status;
        }
      }
    } finally {
      await changes.return?.();
    }
  }
}

/** Prefixed so that a service named "error" is not EventEmitter's special event. */
function eventName(service: string): string {
  return `status:${service}`;
}

/** How many Health/Watch streams may be open at once. */
export interface HealthWatchLimits {
  /** Over the whole server (both listeners); default {@link DEFAULT_HEALTH_WATCHES}. */
  readonly maxWatches?: number;
  /** From one IP address; default {@link DEFAULT_HEALTH_WATCHES_PER_PEER}. */
  readonly maxWatchesPerPeer?: number;
}

export const DEFAULT_HEALTH_WATCHES = 1000;
export const DEFAULT_HEALTH_WATCHES_PER_PEER = 10;

/**
 * grpc.health.v1.Health (Check, Watch, List) backed by `status`. It needs no
 * credentials (load balancers call it), so Watch streams, which each hold
 * memory until the client leaves, are capped per peer and in total:
 * RESOURCE_EXHAUSTED beyond.
 */
export function healthRegistration(
  status: HealthStatus,
  limits: HealthWatchLimits = {},
): ServiceRegistration {
  const maxWatches = limits.maxWatches ?? DEFAULT_HEALTH_WATCHES;
  const maxPerPeer = limits.maxWatchesPerPeer ?? DEFAULT_HEALTH_WATCHES_PER_PEER;
  let open = 0;
  const perPeer = new Map<string, number>();
  /** Takes a watch slot for `peer`, or throws RESOURCE_EXHAUSTED; returns its release. */
  const take = (peer: string): (() => void) => {
    const mine = perPeer.get(peer) ?? 0;
    if (open >= maxWatches) {
      throw new ConnectError(
        `this server already has ${maxWatches} Health/Watch streams open; use Check, or retry later`,
        Code.ResourceExhausted,
      );
    }
    if (mine >= maxPerPeer) {
      throw new ConnectError(
        `${maxPerPeer} Health/Watch streams are already open from ${peer}; close one or use Check`,
        Code.ResourceExhausted,
      );
    }
    open++;
    perPeer.set(peer, mine + 1);
    return () => {
      open--;
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left > 0) perPeer.set(peer, left);
      else perPeer.delete(peer);
    };
  };
  return registration(Health, {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status: current };
    },
    async *watch(req, ctx) {
      const release = take(ctx.values.get(peerKey)?.address ?? "unknown");
      try {
        for await (const current of status.watch(req.service, ctx.signal)) {
          yield { status: current };
        }
      } finally {
        release();
      }
    },
    list() {
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const [service, current] of status.list()) statuses[service] = { status: current };
      return { statuses };
    },
  });
}
