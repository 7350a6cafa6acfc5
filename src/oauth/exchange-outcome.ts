import type { StoredCredential } from "../core/credential.js";
import {
  type BrokerError,
  InvalidArgumentError,
  ReauthorizeError,
  UpstreamConfigError,
  UpstreamUnavailableError,
} from "../shared/errors.js";

/** What an exchange gave, as every caller presenting the same code gets it. */
export type ExchangeOutcome =
  | {
      readonly ok: true;
      readonly openid: string;
      readonly unionid?: string;
      readonly scope: string;
      readonly snapshotUser: boolean;
      /** The grant's access token as first stored (version, value, expiry). */
      readonly credential: StoredCredential;
    }
  | {
      readonly ok: false;
      readonly error: {
        readonly type: "reauthorize" | "bad_code" | "config" | "unavailable";
        readonly message: string;
        readonly details?: Readonly<Record<string, string>>;
        readonly errcode?: number;
      };
    };

/** The outcome as the ledger keeps it (sealed at rest by the ledger's store). */
export function encodeOutcome(outcome: ExchangeOutcome): string {
  return JSON.stringify(outcome);
}

export function decodeOutcome(text: string): ExchangeOutcome {
  return JSON.parse(text) as ExchangeOutcome;
}

/** A failed exchange's outcome, from the error it ended with. */
export function failureOf(err: BrokerError): ExchangeOutcome {
  if (err instanceof ReauthorizeError) {
    return {
      ok: false,
      error: {
        type: err.code === "BROKER_REAUTHORIZE_BAD_CODE" ? "bad_code" : "reauthorize",
        message: err.message,
        details: err.details,
      },
    };
  }
  if (err instanceof UpstreamConfigError) {
    return { ok: false, error: { type: "config", message: err.message, errcode: err.errcode } };
  }
  return { ok: false, error: { type: "unavailable", message: err.message } };
}

/** The error a failed outcome is told with. */
export function errorOf(e: Extract<ExchangeOutcome, { ok: false }>["error"]): BrokerError {
  switch (e.type) {
    case "reauthorize":
    case "bad_code":
      return new ReauthorizeError(e.message, e.details ?? {}, e.type === "bad_code");
    case "config":
      return new UpstreamConfigError(e.message, e.errcode ?? 0);
    default:
      return new UpstreamUnavailableError(e.message);
  }
}

/** Codes WeChat issues are short URL-safe strings; anything else is not one. */
export function validateCode(code: string): string {
  if (code === "") {
    throw new InvalidArgumentError(
      "code is required: the `code` query parameter WeChat appended to the redirect URL",
    );
  }
  if (code.length > 512 || !/^[A-Za-z0-9_-]+$/.test(code)) {
    throw new InvalidArgumentError(
      "code is not a WeChat authorization code (letters, digits, '_' or '-', at most 512)",
    );
  }
  return code;
}
