import {
  BrokerError,
  QuotaExhaustedError,
  UpstreamConfigError,
  UpstreamUnavailableError,
} from "../shared/errors.js";
import { UpstreamError } from "../upstream/upstream-error.js";
import { remedyFor } from "../upstream/wechat-errors.js";
import { type CredentialKey, describeKey } from "./credential.js";

/**
 * Turns a failed refresh into the error a caller sees when no valid
 * credential is cached. The WeChat errcode is kept; the secret and token never
 * are (UpstreamError messages carry neither).
 */
export function toBrokerError(err: unknown, key: CredentialKey): BrokerError {
  if (err instanceof BrokerError) return err;
  const what = describeKey(key);
  if (err instanceof UpstreamError) {
    switch (err.category) {
      case "config":
        return new UpstreamConfigError(
          `WeChat refused to issue the ${what}: ${err.message}. To fix: ${remedyFor(err.errcode ?? 0)}`,
          err.errcode ?? 0,
        );
      case "quota":
        return new QuotaExhaustedError(
          `WeChat's quota is used up for the ${what} (${err.message}) and no valid one is cached; ` +
            (err.errcode === 45011
              ? "retry in a minute"
              : "it resets at 00:00 China time, or an operator can clear it"),
          err.errcode ?? 0,
        );
      default:
        return new UpstreamUnavailableError(
          `could not get the ${what} from WeChat (${err.message}) and no valid one is cached; retry with backoff`,
          { cause: err },
        );
    }
  }
  return new UpstreamUnavailableError(
    `could not get the ${what}: ${err instanceof Error ? err.name : "unknown error"}; retry with backoff`,
    { cause: err },
  );
}
