import { Code, ConnectError } from "@connectrpc/connect";
import { backoffMs } from "./clock.js";
import type { SourceCore } from "./core.js";
import { isReauthorize } from "./errors.js";

/**
 * GetToken refusals that no retry fixes (the request or the client's setup is
 * wrong, or a user must authorize again): before the first token they fail
 * createTokenSource instead of retrying forever.
 */
const FATAL = new Set([Code.InvalidArgument, Code.NotFound, Code.Unauthenticated]);

/**
 * Follows the broker's schedule with GetToken when the stream cannot: at
 * `refresh_after` (a little after it while a stream is open, which should
 * have delivered the new version by then), and from then on with backoff
 * until a newer version comes. Also the polling fallback: with no stream,
 * this is how new versions arrive. A poll finding a version the open stream
 * did not send means the stream is stuck: it is abandoned.
 */
export class Watchdog {
  #cancel: (() => void) | undefined;
  /** Polls since the last new version that found nothing newer, or failed. */
  #misses = 0;
  #polls = 0;
  /** GetToken was refused (the client may only watch): polls only while no stream is open. */
  #getRefused = false;
  #running: Promise<void> | undefined;

  constructor(
    private readonly core: SourceCore,
    private readonly hooks: {
      streaming(): boolean;
      streamRefused(): boolean;
      /** A poll found a version the open stream did not deliver. */
      streamMissed(): void;
      /** Before any token: the broker refuses the request for good. */
      fatal(error: ConnectError): void;
    },
  ) {}

  get polls(): number {
    return this.#polls;
  }

  /** A new version arrived: plan from its refresh_after. */
  newVersion(): void {
    this.#misses = 0;
    this.plan();
  }

  /** Plans the next check from what is held now. */
  plan(): void {
    this.#cancel?.();
    if (this.core.closed.aborted) return;
    const { clock, tuning, random } = this.core;
    const held = this.core.held();
    const now = clock.now();
    if (this.#getRefused && this.hooks.streaming()) return;
    let at: number;
    if (!held) {
      at = now + (this.#misses === 0 ? 0 : this.#backoff());
    } else {
      // Spread over a second so that a fleet does not poll in the same instant,
      // and never so late that the token expires first (tickets are replaced in their last second).
      const grace = (this.hooks.streaming() ? tuning.streamGraceMs : 0) + random() * 1000;
      at =
        held.refreshAfter + Math.min(grace, Math.max(0, (held.expiresAt - held.refreshAfter) / 2));
      if (this.#misses > 0) at = Math.max(at, now + this.#backoff());
    }
    this.#cancel = clock.schedule(() => void this.check(), Math.max(0, Math.ceil(at - now)));
  }

  /** Polls now (one at a time), then plans the next check. */
  check(): Promise<void> {
    this.#running ??= this.#poll().finally(() => {
      this.#running = undefined;
      this.plan();
    });
    return this.#running;
  }

  stop(): void {
    this.#cancel?.();
  }

  #backoff(): number {
    const { tuning, random } = this.core;
    return backoffMs(this.#misses, tuning.backoffInitialMs * 4, tuning.backoffMaxMs, random());
  }

  async #poll(): Promise<void> {
    const { core } = this;
    let lastError: unknown;
    for (let i = 0; i < core.replicas.size && !core.closed.aborted; i++) {
      const connection = core.replicas.take();
      try {
        this.#polls++;
        const res = await connection.client.getToken(core.request, {
          timeoutMs: core.tuning.callTimeoutMs,
          signal: core.closed,
        });
        this.#getRefused = false;
        const wasStreaming = this.hooks.streaming();
        if (core.offer(res.token, "GetToken")) {
          if (wasStreaming) this.hooks.streamMissed();
        } else {
          this.#misses++;
        }
        return;
      } catch (err) {
        if (core.closed.aborted) return;
        lastError = err;
        core.report(err, `GetToken on ${connection.address}`);
        const code = ConnectError.from(err).code;
        const refused =
          FATAL.has(code) ||
          isReauthorize(err) ||
          (code === Code.PermissionDenied && this.hooks.streamRefused());
        if (refused && core.held() === undefined) {
          this.hooks.fatal(ConnectError.from(err));
          return;
        }
        if (code === Code.PermissionDenied) this.#getRefused = true;
      }
    }
    if (lastError !== undefined) this.#misses++;
  }
}
