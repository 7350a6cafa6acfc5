import { randomBytes } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import { Acker } from "./acker.js";
import { systemClock } from "./clock.js";
import type { SourceCore } from "./core.js";
import { TokenSourceClosedError, TokenUnavailableError } from "./errors.js";
import type { Token } from "./gen/tokenbroker/v1/token_service_pb.js";
import { type HeldToken, heldFrom, isNewer, stateOf, type TokenState } from "./held-token.js";
import {
  addressesOf,
  DEFAULT_STALE_ERRCODES,
  DEFAULT_TUNING,
  kindOf,
  type TokenSourceOptions,
} from "./options.js";
import { Replicas } from "./replicas.js";
import { StreamLoop } from "./stream-loop.js";
import { Watchdog } from "./watchdog.js";
import { RejectionReports, staleErrcodeOf } from "./with-token.js";

/** What the source is doing, for health checks and diagnosis (never the token). */
export interface TokenSourceStatus {
  readonly state: TokenState;
  /** streaming: a WatchToken stream is open; polling: the broker refuses streams; connecting: neither yet. */
  readonly mode: "streaming" | "polling" | "connecting";
  /** The replica the stream is open to. */
  readonly connectedTo?: string;
  readonly version?: bigint;
  readonly fingerprint?: string;
  readonly expiresAt?: number;
  readonly refreshAfter?: number;
  /** The version the broker last confirmed this instance uses (AckToken). */
  readonly acknowledgedVersion?: bigint;
  /** Streams reopened after delivering (maximum age, a replica leaving, a missed version). */
  readonly reconnects: number;
  /** GetToken calls made (refresh_after checks and polling). */
  readonly polls: number;
  readonly lastError?: { readonly message: string; readonly during: string; readonly at: number };
}

/**
 * The newest version of one credential, held in memory: a WatchToken stream
 * keeps it current, GetToken at `refresh_after` covers a stream that cannot
 * (see StreamLoop and Watchdog). `token()` never calls the network.
 */
export class TokenSource {
  /** Settles when the first token is held; rejects if the broker refuses the request for good, or on close. */
  readonly ready: Promise<void>;
  readonly #core: SourceCore;
  readonly #closer = new AbortController();
  readonly #listeners = new Set<(token: HeldToken) => void>();
  readonly #stream: StreamLoop;
  readonly #watchdog: Watchdog;
  readonly #acker: Acker | undefined;
  readonly #reports: RejectionReports;
  readonly #staleErrcodes: readonly number[];
  readonly #onError: TokenSourceOptions["onError"];
  readonly #running: Promise<void>;
  #held: HeldToken | undefined;
  #settleReady: ((error?: Error) => void) | undefined;
  #lastError: TokenSourceStatus["lastError"];

  constructor(o: TokenSourceOptions) {
    const replicasOf = addressesOf(o.address);
    const kind = kindOf(o.kind);
    const tuning = { ...DEFAULT_TUNING, ...o.tuning };
    this.#staleErrcodes = o.staleErrcodes ?? DEFAULT_STALE_ERRCODES;
    this.#onError = o.onError;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = (error) => {
        this.#settleReady = undefined;
        if (error) reject(error);
        else resolve();
      };
    });
    // Awaited by whoever cares; an unawaited rejection must not crash the process.
    this.ready.catch(() => {});
    const random = Math.random;
    this.#core = {
      clock: o.clock ?? systemClock,
      random,
      tuning,
      request: { appId: o.appId, kind, subject: o.subject ?? "" },
      replicas: new Replicas(
        replicasOf,
        o.credentials,
        { intervalMs: tuning.pingIntervalMs, timeoutMs: tuning.pingTimeoutMs },
        random,
      ),
      closed: this.#closer.signal,
      held: () => this.#held,
      offer: (token, via, previous) => this.#offer(token, via, previous),
      report: (error, during) => this.#report(error, during),
    };
    this.#stream = new StreamLoop(this.#core, { down: () => this.#streamDown() });
    this.#watchdog = new Watchdog(this.#core, {
      streaming: () => this.#stream.mode === "streaming",
      streamRefused: () => this.#stream.mode === "refused",
      streamMissed: () => this.#stream.abandon("a poll found a version the stream did not send"),
      fatal: (error) => {
        this.#settleReady?.(error);
        void this.close();
      },
    });
    this.#acker =
      o.ack === false
        ? undefined
        : new Acker(
            this.#core,
            o.instance ?? randomBytes(9).toString("base64url"),
            () => void this.#watchdog.check(),
          );
    this.#reports = new RejectionReports(this.#core);
    if (o.signal?.aborted) void this.close();
    o.signal?.addEventListener("abort", () => void this.close(), { once: true });
    this.#running = this.#stream.run();
  }

  /** The current token, from memory. Throws TokenUnavailableError when none is valid. */
  token(): string {
    return this.#valid().value;
  }

  /** The held version with its times, while it is valid. */
  current(): HeldToken | undefined {
    const held = this.#held;
    return held && this.#core.clock.now() < held.expiresAt ? held : undefined;
  }

  state(): TokenState {
    return stateOf(this.#held, this.#core.clock.now());
  }

  /** True while a valid token is held: the readiness check for a service that needs one. */
  isReady(): boolean {
    return this.state() !== "expired";
  }

  status(): TokenSourceStatus {
    const held = this.current();
    const mode = this.#stream.mode;
    const connectedTo = this.#stream.connectedTo;
    const acknowledged = this.#acker?.acknowledged;
    return {
      state: this.state(),
      mode: mode === "streaming" ? "streaming" : mode === "refused" ? "polling" : "connecting",
      ...(connectedTo === undefined ? {} : { connectedTo }),
      ...(held
        ? {
            version: held.version,
            fingerprint: held.fingerprint,
            expiresAt: held.expiresAt,
            refreshAfter: held.refreshAfter,
          }
        : {}),
      ...(acknowledged === undefined ? {} : { acknowledgedVersion: acknowledged }),
      reconnects: this.#stream.reconnects,
      polls: this.#watchdog.polls,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** Calls `listener` with every new version (not the one held when it subscribes). */
  onUpdate(listener: (token: HeldToken) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs a WeChat call with the current token. When WeChat says the token is
   * stale (an errcode of `staleErrcodes`, in the result's `errcode` or the
   * error thrown), reports the value to the broker (InvalidateToken: it
   * refreshes only if that value is still current) and runs `fn` once more
   * with the new token; without a new token, the first outcome stands.
   */
  async withToken<T>(fn: (token: string) => T | Promise<T>): Promise<T> {
    const used = this.token();
    let first: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      first = { ok: true, value: await fn(used) };
    } catch (error) {
      first = { ok: false, error };
    }
    const errcode = staleErrcodeOf(first.ok ? first.value : first.error, this.#staleErrcodes);
    if (errcode !== undefined) {
      await this.#reports.report(used, errcode);
      const now = this.current();
      if (now && now.value !== used) return fn(now.value);
    }
    if (first.ok) return first.value;
    throw first.error;
  }

  /** Stops streaming, polling and acknowledging; `token()` keeps answering until the held token expires. */
  async close(): Promise<void> {
    if (!this.#closer.signal.aborted) {
      this.#closer.abort(new TokenSourceClosedError());
      this.#watchdog.stop();
      this.#acker?.stop();
      this.#settleReady?.(new TokenSourceClosedError("closed before a token was received"));
    }
    await this.#running.catch(() => {});
    this.#core.replicas.close();
  }

  #valid(): HeldToken {
    const held = this.#held;
    const now = this.#core.clock.now();
    if (held && now < held.expiresAt) return held;
    const { appId } = this.#core.request;
    throw new TokenUnavailableError(
      held
        ? `the token of app '${appId}' expired at ${new Date(held.expiresAt).toISOString()} and no newer one came from the broker`
        : `no token of app '${appId}' yet: await createTokenSource(...) or source.ready first`,
    );
  }

  #offer(token: Token | undefined, via: string, previous?: number): boolean {
    if (!token || token.value === "") return false;
    const now = this.#core.clock.now();
    let next: HeldToken;
    try {
      next = heldFrom(token, now, previous);
    } catch (err) {
      this.#report(err, via);
      return false;
    }
    const held = this.#held;
    if (!held || isNewer(next, held)) {
      if (next.expiresAt <= now) return false;
      this.#held = next;
      this.#settleReady?.();
      this.#watchdog.newVersion();
      this.#acker?.applied(next.version);
      for (const listener of this.#listeners) {
        try {
          listener(next);
        } catch (err) {
          this.#report(err, "an onUpdate listener");
        }
      }
      return true;
    }
    if (next.version === held.version && next.value === held.value) {
      // The broker's latest word on the held version's times (an overdue refresh moves them).
      const keep = held.previousValidUntil;
      this.#held = keep === undefined ? next : { ...next, previousValidUntil: keep };
      this.#watchdog.plan();
    }
    return false;
  }

  #streamDown(): void {
    const held = this.#held;
    // Without a stream, a missing or due token is polled for now; a fresh one at its refresh_after.
    if (!held || this.#core.clock.now() >= held.refreshAfter) void this.#watchdog.check();
    else this.#watchdog.plan();
  }

  #report(error: unknown, during: string): void {
    const err = error instanceof Error ? error : ConnectError.from(error);
    this.#lastError = { message: err.message, during, at: this.#core.clock.now() };
    try {
      this.#onError?.(err, during);
    } catch {
      // A failing error hook must not stop the source.
    }
  }
}

/** Opens a source and returns it at once; await `ready` before the first `token()`. */
export function openTokenSource(options: TokenSourceOptions): TokenSource {
  return new TokenSource(options);
}

/**
 * Opens a source and resolves once it holds the first token. Rejects when
 * the broker refuses the request for good (unknown app, no permission, bad
 * key) or `options.signal` aborts first; it keeps retrying otherwise.
 */
export async function createTokenSource(options: TokenSourceOptions): Promise<TokenSource> {
  const source = new TokenSource(options);
  try {
    await source.ready;
  } catch (err) {
    await source.close();
    throw err;
  }
  return source;
}
