import type { EventEmitter } from "node:events";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { hasHeaders, headersToMetadata, metadataToHeaders } from "./grpc-metadata.js";
import { parseGrpcJsPeer, peerKey } from "./peer.js";
import { methodPath } from "./registration.js";

/** What the adapter needs of any grpc-js server call. */
export type GrpcJsCall = Pick<
  grpc.ServerUnaryCall<unknown, unknown>,
  | "cancelled"
  | "metadata"
  | "getDeadline"
  | "getPeer"
  | "getAuthContext"
  | "getHost"
  | "sendMetadata"
> &
  EventEmitter;

/**
 * The reason a finished call's signal is aborted with (so downstream work
 * stops). Preallocated: aborting without a reason builds a DOMException with a
 * stack trace on every call, which showed up as several percent of the hot path.
 */
const CALL_FINISHED = Object.assign(new Error("the call has finished"), { name: "AbortError" });

/**
 * The calls in flight that one shutdown signal ends. One listener on the
 * signal for all of them: linking every call's own controller to it (as
 * connect's createHandlerContext does) cost an EventTarget listener add and
 * remove per call on the hot path.
 */
export class LiveCalls {
  readonly #calls = new Set<GrpcCallContext>();

  constructor(readonly shutdown: AbortSignal) {
    shutdown.addEventListener(
      "abort",
      () => {
        for (const call of this.#calls) call.cancel(shutdown.reason);
      },
      { once: true },
    );
  }

  add(call: GrpcCallContext): void {
    if (this.shutdown.aborted) call.cancel(this.shutdown.reason);
    else this.#calls.add(call);
  }

  delete(call: GrpcCallContext): void {
    this.#calls.delete(call);
  }
}

/**
 * A connect `HandlerContext` for one grpc-js call, built lazily: the abort
 * controller, request headers, response headers and trailers exist only once
 * a handler (or a wrapper) touches them. A cached GetToken touches none but
 * the signal, so it pays for one AbortController, not connect's three
 * controllers, four Headers and a deadline timer.
 *
 * The signal aborts on client cancel (Canceled), deadline (DeadlineExceeded),
 * server shutdown (the shutdown signal's reason) and when the call ends.
 */
export class GrpcCallContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly values: ContextValues;
  readonly #call: GrpcJsCall;
  readonly #deadlineMs: number;
  readonly #live: LiveCalls;
  #controller: AbortController | undefined;
  /** Why the call stopped early; set once, before or after the signal exists. */
  #cancelReason: unknown;
  #finished = false;
  #onCancel: ((reason: unknown) => void) | undefined;
  #requestHeader: Headers | undefined;
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;

  constructor(
    readonly method: DescMethod,
    call: GrpcJsCall,
    live: LiveCalls,
  ) {
    this.#call = call;
    this.#live = live;
    const deadline = call.getDeadline();
    this.#deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    this.values = createContextValues().set(
      peerKey,
      parseGrpcJsPeer(call.getPeer(), call.getAuthContext()),
    );
    // grpc-js arms its deadline timer but lets a handler start on a deadline
    // already past; such a call must not be answered OK.
    if (call.cancelled || this.#deadlineMs <= Date.now()) this.#clientCancelled();
    else call.once("cancelled", () => this.#clientCancelled());
    live.add(this);
  }

  get service(): DescService {
    return this.method.parent;
  }

  get url(): string {
    return `http://${this.#call.getHost()}${methodPath(this.method)}`;
  }

  // A method, not an arrow field: a field would allocate a closure per call.
  timeoutMs(): number | undefined {
    return Number.isFinite(this.#deadlineMs)
      ? Math.max(0, this.#deadlineMs - Date.now())
      : undefined;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#finished) this.#controller.abort(CALL_FINISHED);
      else if (this.#cancelReason !== undefined) this.#controller.abort(this.#cancelReason);
    }
    return this.#controller.signal;
  }

  get requestHeader(): Headers {
    this.#requestHeader ??= metadataToHeaders(this.#call.metadata);
    return this.#requestHeader;
  }

  get responseHeader(): Headers {
    this.#responseHeader ??= new Headers();
    return this.#responseHeader;
  }

  get responseTrailer(): Headers {
    this.#responseTrailer ??= new Headers();
    return this.#responseTrailer;
  }

  /** The response headers as metadata, if a handler set any. */
  headerMetadata(): grpc.Metadata | undefined {
    const h = this.#responseHeader;
    return h && hasHeaders(h) ? headersToMetadata(h) : undefined;
  }

  /** The trailers as metadata, if a handler set any. */
  trailerMetadata(): grpc.Metadata | undefined {
    const t = this.#responseTrailer;
    return t && hasHeaders(t) ? headersToMetadata(t) : undefined;
  }

  /** The trailers as Headers for a status (created only if a handler set any). */
  trailersForStatus(): Headers | undefined {
    return this.#responseTrailer;
  }

  /** Ends the call early: client cancel, deadline or shutdown. The first reason wins. */
  cancel(reason: unknown): void {
    if (this.#finished || this.#cancelReason !== undefined) return;
    this.#cancelReason = reason;
    this.#controller?.abort(reason);
    const onCancel = this.#onCancel;
    this.#onCancel = undefined;
    onCancel?.(reason);
  }

  /**
   * Settles like `promise`, or rejects with the cancel reason as soon as the
   * call is cancelled: a handler that ignores its signal cannot hold a call
   * past its deadline or the shutdown grace period.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => {});
    if (this.#cancelReason !== undefined) return Promise.reject(this.#cancelReason);
    return new Promise<T>((resolve, reject) => {
      this.#onCancel = reject;
      promise.then(resolve, reject);
    });
  }

  /** The call has ended (answered or failed): abort downstream work, forget it. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onCancel = undefined;
    this.#live.delete(this);
    this.#controller?.abort(CALL_FINISHED);
  }

  #clientCancelled(): void {
    // grpc-js also says "cancelled" when a finished call's stream closes; nothing to do then.
    if (this.#finished) return;
    this.cancel(
      Date.now() >= this.#deadlineMs
        ? new ConnectError("the operation timed out", Code.DeadlineExceeded)
        : new ConnectError("the client canceled the call", Code.Canceled),
    );
  }
}
