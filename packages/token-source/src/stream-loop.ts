import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { backoffMs, pause } from "./clock.js";
import type { SourceCore } from "./core.js";

/** Refusals that mean streaming is not possible here (no `watch` permission, a proxy or broker without it). */
const STREAM_REFUSED = new Set([Code.Unimplemented, Code.PermissionDenied]);

/** A stream that sent nothing in time, or that missed a version the broker has. */
class StreamAbandoned extends Error {
  constructor(
    message: string,
    readonly resetConnection: boolean,
  ) {
    super(message);
    this.name = "StreamAbandoned";
  }
}

/** A stream that delivered and lasted this long is reopened at once when it ends. */
const MIN_LIFE_MS = 1000;

export type StreamMode = "connecting" | "streaming" | "refused";

/**
 * Keeps one WatchToken stream open, to the replicas in turn. A stream that
 * ends (the broker's maximum stream age, a shutdown) is reopened at once; one
 * that fails, or sends nothing within `firstMessageTimeoutMs` (a frozen
 * replica), is retried with jittered backoff on the next replica. When the
 * broker refuses streams, the watchdog polls instead and streaming is tried
 * again after `streamRetryMs`.
 */
export class StreamLoop {
  #mode: StreamMode = "connecting";
  #connectedTo: string | undefined;
  #call: AbortController | undefined;
  #reconnects = 0;

  constructor(
    private readonly core: SourceCore,
    private readonly hooks: {
      /** The stream is down; `refused`: streaming is not possible for now. */
      down(refused: boolean): void;
    },
  ) {}

  get mode(): StreamMode {
    return this.#mode;
  }

  get connectedTo(): string | undefined {
    return this.#connectedTo;
  }

  /** Streams reopened after they had delivered (ended by the broker or abandoned). */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Drops the open stream, which missed a version: the loop reopens one on the next replica. */
  abandon(reason: string): void {
    this.#call?.abort(new StreamAbandoned(reason, true));
  }

  async run(): Promise<void> {
    const { core } = this;
    const { clock, tuning } = core;
    let failures = 0;
    while (!core.closed.aborted) {
      const connection = core.replicas.take();
      const call = new AbortController();
      this.#call = call;
      const onClose = () => call.abort(core.closed.reason);
      core.closed.addEventListener("abort", onClose, { once: true });
      const cancelFirst = clock.schedule(
        () =>
          call.abort(
            new StreamAbandoned(
              `no message within ${tuning.firstMessageTimeoutMs} ms of opening the stream`,
              true,
            ),
          ),
        tuning.firstMessageTimeoutMs,
      );
      const openedAt = clock.now();
      let received = 0;
      let outcome: unknown;
      try {
        const stream = connection.client.watchToken(core.request, { signal: call.signal });
        for await (const res of stream) {
          if (received++ === 0) {
            cancelFirst();
            this.#mode = "streaming";
            this.#connectedTo = connection.address;
          }
          const previous = res.previousValidUntil ? timestampMs(res.previousValidUntil) : undefined;
          core.offer(res.token, "WatchToken", previous);
        }
        outcome = new ConnectError("the broker ended the stream", Code.Unavailable);
      } catch (err) {
        outcome = call.signal.aborted ? call.signal.reason : err;
      } finally {
        cancelFirst();
        core.closed.removeEventListener("abort", onClose);
        this.#call = undefined;
        this.#connectedTo = undefined;
        this.#mode = "connecting";
      }
      if (core.closed.aborted) return;
      if (outcome instanceof StreamAbandoned && outcome.resetConnection)
        core.replicas.reset(connection);
      core.report(outcome, `WatchToken on ${connection.address}`);
      const code =
        outcome instanceof StreamAbandoned ? Code.Unavailable : ConnectError.from(outcome).code;
      if (STREAM_REFUSED.has(code)) {
        this.#mode = "refused";
        this.hooks.down(true);
        await pause(clock, tuning.streamRetryMs, core.closed);
        this.#mode = "connecting";
        continue;
      }
      this.hooks.down(false);
      // A stream that lived is reopened at once (with a little jitter, so that
      // the clients of a replica that shuts down do not all arrive together);
      // one that failed soon backs off, so a flapping replica is not hammered.
      const lived = received > 0 && clock.now() - openedAt >= MIN_LIFE_MS;
      if (received > 0) this.#reconnects++;
      failures = lived ? 0 : failures + 1;
      const delay = lived
        ? Math.round(core.random() * tuning.backoffInitialMs)
        : backoffMs(failures, tuning.backoffInitialMs, tuning.backoffMaxMs, core.random());
      await pause(clock, delay, core.closed);
    }
  }
}
