import { type Clock, sleep, systemClock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import type { AlertEvent, Notifier } from "../alerts.js";
import { type WebhookFormat, webhookBody } from "./webhook-body.js";

export type { WebhookFormat };

export interface WebhookNotifierOptions {
  /** May carry a secret (a WeCom robot's `key=`); it is never logged. */
  url: string;
  format: WebhookFormat;
  /** Limit for one attempt, connecting through reading the reply. */
  timeoutMs: number;
  /** Defaults to the global fetch; tests may pass their own. */
  fetch?: typeof fetch;
  /** Attempts after the first; at most 2. */
  retries?: number;
  /** Wait before the first retry; doubles for the next. */
  backoffMs?: number;
  /** Paces the backoff waits. */
  clock?: Clock;
  /** Gets a warning per failed attempt (the final failure is thrown). */
  logger?: Logger;
}

const MAX_RETRIES = 2;
const DEFAULT_BACKOFF_MS = 250;
/** WeCom robot errcodes worth retrying: system busy, and rate limited. */
const WECOM_RETRYABLE = new Set([-1, 45009]);

type Attempt = { ok: true } | { ok: false; reason: string; retryable: boolean };

/**
 * POSTs each alert event as JSON, either generic or as a WeCom group robot
 * markdown message. Retries timeouts, network errors, 408/429/5xx and WeCom
 * "busy" replies up to twice with a short backoff, then throws an error
 * naming only the URL's origin: webhook URLs often carry a secret key.
 */
export class WebhookNotifier implements Notifier {
  readonly #url: string;
  /** What logs and errors call the webhook: scheme, host and port only. */
  readonly #origin: string;
  readonly #o: WebhookNotifierOptions;
  readonly #retries: number;

  constructor(options: WebhookNotifierOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      // The message leaves the URL out: it may hold a key.
      throw new Error("webhook url is not a valid URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new Error(`webhook url must be http or https, not ${parsed.protocol}`);
    }
    this.#url = parsed.href;
    this.#origin = parsed.origin;
    this.#o = options;
    this.#retries = Math.min(MAX_RETRIES, Math.max(0, options.retries ?? MAX_RETRIES));
  }

  /** The webhook's origin, the only part of its URL that is safe to show. */
  get origin(): string {
    return this.#origin;
  }

  async notify(event: AlertEvent, signal?: AbortSignal): Promise<void> {
    const body = JSON.stringify(webhookBody(this.#o.format, event));
    const backoffMs = this.#o.backoffMs ?? DEFAULT_BACKOFF_MS;
    let last: Attempt = { ok: false, reason: "not attempted", retryable: false };
    let attempts = 0;
    while (attempts <= this.#retries) {
      if (attempts > 0)
        await sleep(this.#o.clock ?? systemClock, backoffMs * 2 ** (attempts - 1), signal);
      attempts++;
      last = await this.#attempt(body, signal);
      if (last.ok) return;
      this.#o.logger?.warn(
        {
          webhook: this.#origin,
          alert: event.name,
          state: event.state,
          attempt: attempts,
          reason: last.reason,
        },
        "alert webhook attempt failed",
      );
      if (!last.retryable) break;
    }
    throw new Error(
      `webhook ${this.#origin} failed after ${attempts} attempt(s): ${last.ok ? "?" : last.reason}`,
    );
  }

  async #attempt(body: string, outer: AbortSignal | undefined): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
    try {
      const res = await (this.#o.fetch ?? fetch)(this.#url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal,
      });
      const text = await res.text();
      if (!res.ok) {
        const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
        return { ok: false, reason: `HTTP ${res.status}`, retryable };
      }
      return this.#o.format === "wecom" ? wecomReply(text) : { ok: true };
    } catch (err) {
      if (outer?.aborted) throw outer.reason;
      if (timeout.aborted) {
        return { ok: false, reason: `timed out after ${this.#o.timeoutMs} ms`, retryable: true };
      }
      // Only the error code: undici's messages and causes can name the URL.
      return { ok: false, reason: `network error (${errorCode(err)})`, retryable: true };
    }
  }
}

/** A WeCom robot answers 200 with `{"errcode":0}` on success. */
function wecomReply(text: string): Attempt {
  let errcode: unknown;
  try {
    errcode = (JSON.parse(text) as { errcode?: unknown }).errcode;
  } catch {
    return { ok: true };
  }
  if (errcode === undefined || errcode === 0) return { ok: true };
  const code = Number(errcode);
  return { ok: false, reason: `wecom errcode ${code}`, retryable: WECOM_RETRYABLE.has(code) };
}

function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code ?? (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : "unknown";
}
