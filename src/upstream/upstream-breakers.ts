import { EventEmitter } from "node:events";
import CircuitBreaker from "opossum";
import { CircuitOpenError, UpstreamError } from "../core/upstream-error.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerPolicy {
  /** Failures (in %) within the window that open the breaker. */
  readonly errorThresholdPercent: number;
  /** Calls within the window before the breaker may open at all. */
  readonly volumeThreshold: number;
  /** How long an open breaker waits before letting one probe through (half-open). */
  readonly resetMs: number;
  /** The rolling window over which failures are counted. */
  readonly windowMs: number;
}

export const DEFAULT_BREAKER_POLICY: BreakerPolicy = Object.freeze({
  errorThresholdPercent: 50,
  volumeThreshold: 3,
  resetMs: 30_000,
  windowMs: 60_000,
});

const BUCKETS = 6;

interface Entry {
  breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  state: BreakerState;
  openedAt?: number;
  cancelReset?: () => void;
}

/**
 * One opossum circuit breaker per app and WeChat endpoint. Only faults of
 * WeChat itself count (errcode -1, 45011, HTTP 5xx, timeouts, network):
 * configuration errors (40125 …), quota (45009) and stale-token answers are
 * the caller's business and never open a circuit.
 *
 * opossum's own reset timer and bucket rotation run on real time; here both
 * run on the injected clock (opossum's reset timer is disabled, and a fresh
 * breaker primed half-open replaces the open one when the reset time comes),
 * so tests drive hours of outage with a fake clock.
 */
export class UpstreamBreakers {
  readonly #entries = new Map<string, Entry>();
  readonly #rotate = new EventEmitter();
  readonly #cancelRotation: () => void;
  #closed = false;

  constructor(
    private readonly o: {
      clock: Clock;
      logger: Logger;
      policy?: BreakerPolicy;
      onStateChange?: (app: string, endpoint: string, state: BreakerState) => void;
    },
  ) {
    this.#rotate.setMaxListeners(0);
    const bucketMs = this.#policy.windowMs / BUCKETS;
    const tick = () => {
      this.#rotate.emit("rotate");
      cancel = o.clock.schedule(tick, bucketMs);
    };
    let cancel = o.clock.schedule(tick, bucketMs);
    this.#cancelRotation = () => cancel();
  }

  get #policy(): BreakerPolicy {
    return this.o.policy ?? DEFAULT_BREAKER_POLICY;
  }

  /** Runs `fn` through the breaker of `app` and `endpoint`; rejects with CircuitOpenError when open. */
  async run<T>(app: string, endpoint: string, fn: () => Promise<T>): Promise<T> {
    const id = `${app} ${endpoint}`;
    const entry = this.#entries.get(id) ?? this.#create(id, app, endpoint, "closed");
    try {
      return (await entry.breaker.fire(fn)) as T;
    } catch (err) {
      if (CircuitBreaker.isOurError(err as Error)) {
        throw new CircuitOpenError(
          endpoint,
          (entry.openedAt ?? this.o.clock.now()) + this.#policy.resetMs,
        );
      }
      throw err;
    }
  }

  state(app: string, endpoint: string): BreakerState {
    return this.#entries.get(`${app} ${endpoint}`)?.state ?? "closed";
  }

  /** Every breaker that has been used, for status and metrics. */
  list(): Array<{ app: string; endpoint: string; state: BreakerState; openedAt?: number }> {
    return [...this.#entries.entries()].map(([id, e]) => {
      const [app = "", endpoint = ""] = id.split(" ");
      return {
        app,
        endpoint,
        state: e.state,
        ...(e.openedAt === undefined ? {} : { openedAt: e.openedAt }),
      };
    });
  }

  close(): void {
    this.#closed = true;
    this.#cancelRotation();
    for (const e of this.#entries.values()) {
      e.cancelReset?.();
      e.breaker.shutdown();
    }
  }

  #create(id: string, app: string, endpoint: string, state: "closed" | "half_open"): Entry {
    const p = this.#policy;
    const breaker = new CircuitBreaker<[() => Promise<unknown>], unknown>((fn) => fn(), {
      name: id,
      timeout: false, // the WeChat client has its own timeout
      errorThresholdPercentage: p.errorThresholdPercent,
      volumeThreshold: p.volumeThreshold,
      resetTimeout: 2 ** 31 - 1, // never: the reset runs on the injected clock
      rollingCountTimeout: p.windowMs,
      rollingCountBuckets: BUCKETS,
      rotateBucketController: this.#rotate,
      enableSnapshots: false,
      errorFilter: (err: unknown) => !countsAsFault(err),
      ...(state === "half_open" ? { state: { closed: false, halfOpen: true } } : {}),
    });
    const entry: Entry = { breaker, state };
    breaker.on("open", () => this.#onOpen(id, app, endpoint, entry));
    breaker.on("close", () => this.#transition(app, endpoint, entry, "closed"));
    this.#entries.set(id, entry);
    return entry;
  }

  #onOpen(id: string, app: string, endpoint: string, entry: Entry): void {
    entry.openedAt = this.o.clock.now();
    this.#transition(app, endpoint, entry, "open");
    entry.cancelReset = this.o.clock.schedule(() => {
      if (this.#closed || this.#entries.get(id) !== entry) return;
      entry.breaker.shutdown();
      const probe = this.#create(id, app, endpoint, "half_open");
      probe.openedAt = entry.openedAt;
      probe.state = entry.state; // so the transition below is reported
      this.#transition(app, endpoint, probe, "half_open");
    }, this.#policy.resetMs);
  }

  #transition(app: string, endpoint: string, entry: Entry, to: BreakerState): void {
    if (entry.state === to) return;
    entry.state = to;
    if (to === "closed") delete entry.openedAt;
    this.o.logger[to === "open" ? "warn" : "info"](
      { app, endpoint, state: to },
      `WeChat circuit ${to.replace("_", "-")}`,
    );
    this.o.onStateChange?.(app, endpoint, to);
  }
}

/**
 * Faults of WeChat itself; everything else is a verdict about the request.
 * The broker's own refusals (an open circuit, a used-up budget, a 45009
 * block) never reached WeChat, so they are neither faults nor worth a retry.
 * An errcode the broker does not know is not taken for an outage either.
 */
export function countsAsFault(err: unknown): boolean {
  if (!(err instanceof UpstreamError)) return false; // e.g. our own abort
  switch (err.failure.kind) {
    case "not_called":
      return false;
    case "errcode":
      // 45011, the per-minute limit: back off like an outage.
      return err.failure.errcode === 45011 || err.category === "retryable";
    default:
      return true; // network, timeout, HTTP status, bad body
  }
}

/**
 * Faults worth an inline retry. Not 45011: WeChat says "retry next minute",
 * and a retry within the same minute is refused again and counted (§12 C5).
 */
export function retryableInline(err: unknown): boolean {
  return countsAsFault(err) && (err as UpstreamError).errcode !== 45011;
}
