import { CodedError } from "../shared/errors.js";
import type { ErrcodeCategory, QuotaRefusal } from "./kind.js";

/**
 * What went wrong with a call to WeChat, as data: metrics, breakers and the
 * errors callers see read this, never the error's text.
 */
export type UpstreamFailure =
  /** WeChat answered with an errcode; `errmsg` is as scrubbed by the client (scrub-errmsg.ts). */
  | { readonly kind: "errcode"; readonly errcode: number; readonly errmsg: string }
  /** An HTTP status other than 200 (WeChat's front end, or a proxy before it). */
  | { readonly kind: "http"; readonly status: number }
  /** No answer within the client's timeout. */
  | { readonly kind: "timeout"; readonly afterMs: number }
  /** The connection failed; `code` is Node's (ECONNREFUSED …) when known. */
  | { readonly kind: "network"; readonly code?: string }
  /** An answer that is not WeChat's JSON, or lacks what the call returns; e.g. "is not JSON". */
  | { readonly kind: "malformed"; readonly problem: string }
  /** WeChat was not called: the broker's own refusal (an open circuit, the quota ledger). */
  | { readonly kind: "not_called"; readonly reason: "circuit_open" | QuotaRefusal };

/**
 * A failed call to WeChat. `failure` says what happened; `category` is the
 * broker's reaction (an errcode's classification; WeChat's own faults are
 * "retryable", the ledger's refusals "quota").
 *
 * The message names the endpoint path only: request URLs of /cgi-bin/token
 * carry the AppSecret in the query string and are never included.
 */
export class UpstreamError extends CodedError {
  readonly code: string = "UPSTREAM_FAILED";
  readonly category: ErrcodeCategory;
  /** What a person should do about it (the family's remedy for an errcode). */
  readonly remedy: string | undefined;
  /** For people (logs, status): WeChat's scrubbed errmsg, or what went wrong below the API. */
  readonly detail: string;

  constructor(
    readonly endpoint: string,
    readonly failure: UpstreamFailure,
    /**
     * `category` and `remedy`: an errcode's reading by the family's table
     * (the client that met it passes them; the same number means different
     * things per family). An errcode without a category is "unknown".
     */
    options?: { cause?: unknown; category?: ErrcodeCategory; remedy?: string; detail?: string },
  ) {
    const detail = options?.detail ?? describe(failure);
    super(
      failure.kind === "errcode"
        ? `WeChat ${endpoint} returned errcode ${failure.errcode}: ${detail}`
        : `WeChat ${endpoint} failed: ${detail}`,
      options,
    );
    this.detail = detail;
    this.category = options?.category ?? categoryOf(failure);
    this.remedy = options?.remedy;
  }

  /** WeChat's errcode; undefined when WeChat gave none. */
  get errcode(): number | undefined {
    return this.failure.kind === "errcode" ? this.failure.errcode : undefined;
  }
}

/** The breaker of one app and endpoint is open: WeChat is not called. */
export class CircuitOpenError extends UpstreamError {
  override readonly code = "UPSTREAM_CIRCUIT_OPEN";
  constructor(
    endpoint: string,
    readonly retryAt: number,
  ) {
    super(
      endpoint,
      { kind: "not_called", reason: "circuit_open" },
      {
        detail: `not called: recent calls failed, circuit open until ${new Date(retryAt).toISOString()}`,
      },
    );
  }
}

/** The quota ledger refused the call (budget used up, 45009 earlier today): WeChat is not called. */
export class QuotaRefusedError extends UpstreamError {
  override readonly code: string = "UPSTREAM_QUOTA_REFUSED";
  constructor(
    endpoint: string,
    readonly reason: QuotaRefusal,
    detail: string,
    /** When the ledger may allow the call again, if it said. */
    readonly retryAt?: number,
  ) {
    super(endpoint, { kind: "not_called", reason }, { detail });
  }
}

/**
 * A refresh caused by a report was not called: reports have used their share
 * of the app's daily budget (the rest is kept for scheduled refreshes). Not a
 * WeChat failure: the credential stays as it is.
 */
export class ReportShareUsedError extends QuotaRefusedError {
  override readonly code = "UPSTREAM_REPORT_SHARE_USED";
  constructor(endpoint: string, detail: string, retryAt?: number) {
    super(endpoint, "reserved", detail, retryAt);
  }
}

function describe(f: UpstreamFailure): string {
  switch (f.kind) {
    case "errcode":
      return f.errmsg || "(no errmsg)";
    case "http":
      return `HTTP ${f.status}`;
    case "timeout":
      return `no answer within ${f.afterMs} ms`;
    case "network":
      return f.code ? `network error ${f.code}` : "network error";
    case "malformed":
      return `response ${f.problem}`;
    case "not_called":
      return `not called (${f.reason})`;
  }
}

function categoryOf(f: UpstreamFailure): ErrcodeCategory {
  if (f.kind === "errcode") return "unknown";
  if (f.kind === "not_called" && f.reason !== "circuit_open") return "quota";
  return "retryable";
}
