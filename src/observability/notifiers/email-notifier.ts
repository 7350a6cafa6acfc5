import nodemailer, { type Transporter } from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport/index.js";
import { type Clock, sleep, systemClock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import type { Secret } from "../../shared/secret.js";
import type { AlertEvent, Notifier } from "../alerts.js";
import { emailMessage } from "./email-body.js";

export interface EmailNotifierOptions {
  smtp: {
    host: string;
    port: number;
    /** TLS from the first byte; otherwise STARTTLS. */
    secure: boolean;
    /** Refuse to send without TLS (STARTTLS must succeed). */
    requireTls: boolean;
    user?: string;
    password?: Secret;
    /** PEM of the CA to trust for the server's certificate, when not a public one. */
    ca?: string;
    timeoutMs: number;
  };
  from: string;
  to: readonly string[];
  subjectPrefix: string;
  /** Attempts after the first; at most 2. */
  retries?: number;
  backoffMs?: number;
  /**
   * What retries wait on: real time by default, as a delivery waits on the
   * network, not on the broker's (possibly simulated) clock.
   */
  retryClock?: Clock;
  logger?: Logger;
}

const MAX_RETRIES = 2;
const DEFAULT_BACKOFF_MS = 500;

/**
 * Sends each alert event as one mail through an SMTP server (nodemailer).
 * The AlertManager already makes one event per episode start and one per
 * end, so this sends exactly those. Transient failures (connection, timeout,
 * 4xx replies) are retried up to twice; an authentication failure is not.
 * Errors and logs name the server and nodemailer's error code, never the
 * password (nodemailer's own logger stays off).
 */
export class EmailNotifier implements Notifier {
  readonly #o: EmailNotifierOptions;
  readonly #transport: Transporter<SMTPTransport.SentMessageInfo>;
  readonly #server: string;

  constructor(o: EmailNotifierOptions) {
    this.#o = o;
    const { smtp } = o;
    this.#server = `${smtp.host}:${smtp.port}`;
    this.#transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTls,
      ignoreTLS: !smtp.secure && !smtp.requireTls,
      ...(smtp.user !== undefined && smtp.password !== undefined
        ? { auth: { user: smtp.user, pass: smtp.password.reveal() } }
        : {}),
      tls: { minVersion: "TLSv1.2", ...(smtp.ca ? { ca: smtp.ca } : {}) },
      connectionTimeout: smtp.timeoutMs,
      greetingTimeout: smtp.timeoutMs,
      socketTimeout: smtp.timeoutMs,
      logger: false,
      debug: false,
    });
  }

  async notify(event: AlertEvent, signal?: AbortSignal): Promise<void> {
    const { subject, text } = emailMessage(this.#o.subjectPrefix, event);
    const retries = Math.min(MAX_RETRIES, Math.max(0, this.#o.retries ?? MAX_RETRIES));
    let reason = "not attempted";
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const wait = (this.#o.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1);
        await sleep(this.#o.retryClock ?? systemClock, wait, signal);
      }
      signal?.throwIfAborted();
      try {
        await this.#transport.sendMail({ from: this.#o.from, to: [...this.#o.to], subject, text });
        return;
      } catch (err) {
        const { code, retryable } = failureOf(err);
        reason = code;
        this.#o.logger?.warn(
          {
            smtp: this.#server,
            alert: event.name,
            state: event.state,
            attempt: attempt + 1,
            reason,
          },
          "alert e-mail attempt failed",
        );
        if (!retryable) break;
      }
    }
    throw new Error(`e-mail through ${this.#server} failed: ${reason}`);
  }

  close(): void {
    this.#transport.close();
  }
}

/** nodemailer's code and SMTP reply code only: its messages can quote the server's reply. */
function failureOf(err: unknown): { code: string; retryable: boolean } {
  const e = err as { code?: unknown; responseCode?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "unknown";
  const reply = typeof e?.responseCode === "number" ? e.responseCode : undefined;
  // Wrong credentials, or a server that cannot give the TLS we insist on: retrying does not help.
  if (code === "EAUTH" || code === "ENOAUTH" || code === "ETLS") return { code, retryable: false };
  if (reply !== undefined) {
    return { code: `${code} (SMTP ${reply})`, retryable: reply >= 400 && reply < 500 };
  }
  return { code, retryable: true };
}
