import { EventEmitter, on } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
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

/** grpc.health.v1.Health (Check, Watch, List) backed by `status`. */
export function healthRegistration(status: HealthStatus): ServiceRegistration {
  return registration(Health, {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status: current };
    },
    async *watch(req, ctx) {
      for await (const current of status.watch(req.service, ctx.signal)) {
        yield { status: current };
      }
    },
    list() {
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const [service, current] of status.list()) statuses[service] = { status: current };
      return { statuses };
    },
  });
}
