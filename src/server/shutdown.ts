import { setMaxListeners } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Logger } from "../shared/logger.js";
import { shutdownError } from "./grpc-status.js";
import type { HealthStatus } from "./health.js";

/** How long `close()` lets unary calls finish before force-closing, unless told otherwise. */
export const DEFAULT_GRACE_MS = 5_000;

/** After the grace period, how long aborted unary calls get to answer before connections are destroyed. */
const FORCE_FLUSH_MS = 100;

export interface CloseOptions {
  /** How long calls in flight may take to finish before connections are destroyed. */
  graceMs?: number;
}

/**
 * The two shutdown phases as AbortSignals that handler contexts are linked to.
 *
 * - `streams` aborts when `close()` starts: every open stream (server, client
 *   or bidi) ends promptly with UNAVAILABLE so its client reconnects elsewhere.
 * - `all` aborts when the grace period runs out: unary calls still running are
 *   answered UNAVAILABLE (whether or not their handler stops), just before
 *   the connections are destroyed.
 *
 * Unary calls are not aborted at the start so that they can finish normally.
 */
export class ShutdownSignals {
  readonly #streams = new AbortController();
  readonly #all = new AbortController();

  constructor() {
    // Every call in flight links one abort listener to these (removed when it
    // ends): thousands of WatchToken streams are normal, not a leak, so
    // lift Node's 10-listener warning.
    setMaxListeners(0, this.#streams.signal, this.#all.signal);
  }

  /** The shutdown signal for a call of this kind. */
  forKind(kind: DescMethod["methodKind"]): AbortSignal {
    return kind === "unary" ? this.#all.signal : this.#streams.signal;
  }

  endStreams(): void {
    if (!this.#streams.signal.aborted) this.#streams.abort(shutdownError());
  }

  abortAll(): void {
    this.endStreams();
    if (!this.#all.signal.aborted) this.#all.abort(shutdownError());
  }
}

/** The steps a listener supplies to {@link gracefulCloser}. */
export interface CloseSteps {
  readonly signals: ShutdownSignals;
  readonly logger: Logger;
  /** Flipped to NOT_SERVING first, so health watchers learn before their stream ends. */
  readonly health?: HealthStatus | undefined;
  /** Stops accepting connections and calls; resolves once every connection is gone. */
  stopAccepting(): Promise<void>;
  /** Destroys whatever is still open. */
  forceClose(): void;
}

/**
 * An idempotent `close()`: drain health, stop accepting, end streams, wait up
 * to `graceMs` for the rest, then abort unary calls and force-close.
 */
export function gracefulCloser(steps: CloseSteps): (options?: CloseOptions) => Promise<void> {
  let closing: Promise<void> | undefined;
  return (options = {}) => {
    closing ??= run(steps, options.graceMs ?? DEFAULT_GRACE_MS);
    return closing;
  };
}

async function run(steps: CloseSteps, graceMs: number): Promise<void> {
  const started = Date.now();
  steps.health?.drain();
  const closed = steps.stopAccepting();
  // One turn of the event loop lets watchers' NOT_SERVING reach the wire
  // before their streams end.
  await new Promise((resolve) => setImmediate(resolve));
  steps.signals.endStreams();
  let forced = false;
  let flushTimer: NodeJS.Timeout | undefined;
  const graceTimer = setTimeout(() => {
    forced = true;
    steps.signals.abortAll();
    // Handlers that honour the signal get a moment to write their UNAVAILABLE
    // before the connections go.
    flushTimer = setTimeout(() => steps.forceClose(), FORCE_FLUSH_MS);
    flushTimer.unref();
  }, graceMs);
  graceTimer.unref();
  try {
    await closed;
  } finally {
    clearTimeout(graceTimer);
    clearTimeout(flushTimer);
  }
  steps.logger.info({ graceMs, forced, tookMs: Date.now() - started }, "server closed");
}
