import { Code, ConnectError } from "@connectrpc/connect";
import { backoffMs } from "./clock.js";
import type { SourceCore } from "./core.js";

/**
 * Applied-version feedback: tells the broker (AckToken) which version this
 * instance switched to, and again within the interval the broker asks for
 * while it keeps it, so the broker knows who would still use a replaced
 * version as its overlap runs out. A broker that says the instance is behind
 * gets it re-checked at once. Failures are retried with backoff; a broker
 * without AckToken is not asked again.
 */
export class Acker {
  #version: bigint | undefined;
  #acknowledged: bigint | undefined;
  #cancel: (() => void) | undefined;
  #failures = 0;
  #disabled = false;

  constructor(
    private readonly core: SourceCore,
    private readonly instance: string,
    private readonly behind: () => void,
  ) {}

  /** The version the broker last confirmed this instance uses. */
  get acknowledged(): bigint | undefined {
    return this.#acknowledged;
  }

  applied(version: bigint): void {
    if (this.#disabled) return;
    this.#version = version;
    this.#failures = 0;
    this.#send();
  }

  stop(): void {
    this.#cancel?.();
    this.#disabled = true;
  }

  #send(): void {
    this.#cancel?.();
    const { core } = this;
    const version = this.#version;
    if (version === undefined || core.closed.aborted) return;
    const connection = core.replicas.take();
    connection.client
      .ackToken(
        { ...core.request, version, instance: this.instance },
        { timeoutMs: core.tuning.callTimeoutMs, signal: core.closed },
      )
      .then(
        (res) => {
          if (version !== this.#version || core.closed.aborted) return;
          this.#failures = 0;
          this.#acknowledged = version;
          if (res.currentVersion > version) this.behind();
          if (res.renewWithinSeconds === 0) return; // not counted for this credential
          // Well inside the interval, jittered so a fleet's renewals spread out.
          const renewMs = Math.round(res.renewWithinSeconds * 1000 * (0.5 + 0.3 * core.random()));
          this.#cancel = core.clock.schedule(() => this.#send(), renewMs);
        },
        (err: unknown) => {
          if (core.closed.aborted) return;
          core.report(err, `AckToken on ${connection.address}`);
          if (ConnectError.from(err).code === Code.Unimplemented) {
            this.#disabled = true;
            return;
          }
          if (version !== this.#version) return;
          this.#failures++;
          const { backoffInitialMs, backoffMaxMs } = core.tuning;
          const delay = backoffMs(
            this.#failures,
            backoffInitialMs * 4,
            backoffMaxMs,
            core.random(),
          );
          this.#cancel = core.clock.schedule(() => this.#send(), delay);
        },
      );
  }
}
