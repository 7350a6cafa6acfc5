import { type CredentialKey, describeKey } from "../core/credential.js";
import { QuotaRefusedError, UpstreamError } from "../core/upstream-error.js";
import {
  BrokerError,
  QuotaExhaustedError,
  ReauthorizeError,
  UpstreamConfigError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
} from "../shared/errors.js";

/**
 * Turns a failed refresh into the error a caller sees when no valid
 * credential is cached. A WeChat answer becomes its errcode and the broker's
 * own advice; WeChat's errmsg (already scrubbed by the client) is passed on
 * only for an errcode the broker does not know, where it is all there is.
 */
export function toBrokerError(err: unknown, key: CredentialKey): BrokerError {
  if (err instanceof BrokerError) return err;
  const what = describeKey(key);
  if (err instanceof UpstreamError) {
    const source = `WeChat ${err.endpoint}`;
    const answer =
      err.errcode === undefined ? err.message : `${source} answered errcode ${err.errcode}`;
    switch (err.category) {
      case "config":
        return new UpstreamConfigError(
          `WeChat refused to issue the ${what}: ${answer}. To fix: ${err.remedy ?? "see WeChat's errcode reference"}`,
          err.errcode ?? 0,
        );
      case "quota":
        return new QuotaExhaustedError(
          `WeChat's quota is used up for the ${what} (${answer}) and no valid one is cached; ${quotaAdvice(err)}`,
          err.errcode ?? 0,
        );
      case "grant":
        return reauthorize(key, err);
      case "unknown":
        return new UpstreamRejectedError(
          `${source} answered errcode ${err.errcode}, which this broker does not know ` +
            `(errmsg: "${err.detail}"), for the ${what}; it is not retried soon and an alert names it. ` +
            "See WeChat's errcode reference",
          err.errcode ?? 0,
          err.endpoint,
        );
      default:
        return new UpstreamUnavailableError(
          `could not get the ${what} from WeChat (${answer}) and no valid one is cached; retry with backoff`,
          { cause: err },
        );
    }
  }
  return new UpstreamUnavailableError(
    `could not get the ${what}: ${err instanceof Error ? err.name : "unknown error"}; retry with backoff`,
    { cause: err },
  );
}

/**
 * WeChat voided the subject's grant (on a refresh: 40030 invalid, 42002
 * expired, 42007 password changed). Only the subject can fix it.
 */
function reauthorize(key: CredentialKey, err: UpstreamError): ReauthorizeError {
  const who = key.subject === undefined ? "the grant" : `the grant of '${key.subject}'`;
  return new ReauthorizeError(
    `WeChat no longer honours ${who} for app '${key.appId}' (errcode ${err.errcode}: ${err.remedy ?? err.detail}); ` +
      "the broker deleted it: send the user through WeChat's authorization again",
    grantDetails(key, err.errcode),
  );
}

/** ErrorInfo.metadata of a void grant: identifiers only, never a token or code. */
export function grantDetails(key: CredentialKey, errcode?: number): Record<string, string> {
  return {
    app_id: key.appId,
    kind: key.kind,
    ...(key.subject === undefined ? {} : { subject: key.subject }),
    ...(errcode === undefined ? {} : { errcode: String(errcode) }),
  };
}

/**
 * When to try again: the ledger's own refusal says until when (its message
 * already names whose budget); WeChat's answer gets the family's advice
 * (a China day for official accounts, a minute or an hour for WeCom).
 */
function quotaAdvice(err: UpstreamError): string {
  if (err instanceof QuotaRefusedError) {
    return err.retryAt === undefined
      ? "retry later"
      : `retry after ${new Date(err.retryAt).toISOString()}`;
  }
  return err.remedy ?? "retry later";
}
