/**
 * The broker's error vocabulary. Every error the broker raises on purpose is
 * a class with a stable `code` (for metrics labels, alerts and logs) and is
 * recognised with `instanceof`, never by its text. What a caller sees is a
 * BrokerError; `to-connect-error.ts` beside this file maps them, and the
 * store's outage, to gRPC status codes in one place for both listeners.
 * WeChat's failures (UpstreamError) live in upstream/upstream-error.ts,
 * beside the errcode classification they carry.
 *
 * Messages are written for the person reading them in a client log: they say
 * what happened and what to do, and never contain a secret or a full token value.
 */
export abstract class CodedError extends Error {
  /** Stable machine-readable code; never changes once released. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The codes of the errors a caller can see; each has one gRPC status (to-connect-error.ts). */
export type BrokerErrorCode =
  | "BROKER_INVALID_ARGUMENT"
  | "BROKER_UNKNOWN_APP"
  | "BROKER_APP_REMOVED"
  | "BROKER_UPSTREAM_CONFIG"
  | "BROKER_UPSTREAM_REJECTED"
  | "BROKER_FAILED_PRECONDITION"
  | "BROKER_QUOTA_EXHAUSTED"
  | "BROKER_UPSTREAM_UNAVAILABLE"
  | "BROKER_SHUTTING_DOWN"
  | "BROKER_PERMISSION_DENIED"
  | "BROKER_REAUTHORIZE"
  | "BROKER_REAUTHORIZE_BAD_CODE";

/** An error whose message is meant for the caller. */
export abstract class BrokerError extends CodedError {
  abstract override readonly code: BrokerErrorCode;
}

/** A request field is missing or malformed. */
export class InvalidArgumentError extends BrokerError {
  readonly code = "BROKER_INVALID_ARGUMENT";
}

/** The app id is not configured on this broker. */
export class UnknownAppError extends BrokerError {
  readonly code = "BROKER_UNKNOWN_APP";
  constructor(readonly appId: string) {
    super(
      `app '${appId}' is not configured on this broker; check the app id or add it to the broker's config`,
    );
  }
}

/** A config reload removed the app: what its open WatchToken streams end with. */
export class AppRemovedError extends BrokerError {
  readonly code = "BROKER_APP_REMOVED";
  constructor(readonly appId: string) {
    super(
      `app '${appId}' was removed from the broker's config (reloaded); this broker no longer serves it`,
    );
  }
}

/**
 * WeChat rejected the broker's configuration for an app (wrong appid or
 * secret, IP not whitelisted, secret frozen, account blocked). Retrying does
 * not help; an operator has to act.
 */
export class UpstreamConfigError extends BrokerError {
  readonly code = "BROKER_UPSTREAM_CONFIG";
  constructor(
    message: string,
    readonly errcode: number,
  ) {
    super(message);
  }
}

/**
 * WeChat answered with an errcode the broker does not know. It is neither
 * retried soon nor taken for an outage: the caller gets the errcode and
 * WeChat's (scrubbed) errmsg, and an alert names it.
 */
export class UpstreamRejectedError extends BrokerError {
  readonly code = "BROKER_UPSTREAM_REJECTED";
  constructor(
    message: string,
    readonly errcode: number,
    readonly endpoint: string,
  ) {
    super(message);
  }
}

/** The caller may not do this with what it asked for (beyond the per-method ACL the interceptors check). */
export class PermissionDeniedError extends BrokerError {
  readonly code = "BROKER_PERMISSION_DENIED";
}

/** The request is valid but does not fit the app's configuration (e.g. force-refreshing a classic token). */
export class FailedPreconditionError extends BrokerError {
  readonly code = "BROKER_FAILED_PRECONDITION";
}

/** WeChat's quota for this credential is used up (45009 / 45011), or the broker's own limit is. */
export class QuotaExhaustedError extends BrokerError {
  readonly code = "BROKER_QUOTA_EXHAUSTED";
  constructor(
    message: string,
    /** WeChat's errcode; 0 for a limit of the broker's own. */
    readonly errcode: number,
  ) {
    super(message);
  }
}

/** WeChat cannot be reached or keeps failing, and no valid credential is cached. */
export class UpstreamUnavailableError extends BrokerError {
  readonly code = "BROKER_UPSTREAM_UNAVAILABLE";
}

/** The reason of the google.rpc.ErrorInfo a {@link ReauthorizeError} carries. */
export const REAUTHORIZE_REASON = "REAUTHORIZE";

/**
 * A user's (or tenant's) grant is void or missing: the code was invalid,
 * used or expired, the refresh token was invalid or expired, the user
 * changed their password, or the broker holds no grant. Only the subject can
 * fix it, by authorizing again; callers recognise it by the ErrorInfo reason
 * REAUTHORIZE, without parsing the message.
 */
export class ReauthorizeError extends BrokerError {
  readonly code: "BROKER_REAUTHORIZE" | "BROKER_REAUTHORIZE_BAD_CODE";
  constructor(
    message: string,
    /** Put into ErrorInfo.metadata: app_id, openid, errcode (never a code or token). */
    readonly details: Readonly<Record<string, string>>,
    /** An authorization code WeChat does not know (40029): the request itself was bad. */
    badCode = false,
  ) {
    super(message);
    this.code = badCode ? "BROKER_REAUTHORIZE_BAD_CODE" : "BROKER_REAUTHORIZE";
  }
}

/** What a client sees when the broker drains: UNAVAILABLE, "retry elsewhere". */
export const SHUTDOWN_MESSAGE = "broker is shutting down; reconnect to another replica";

/** The broker is draining; the caller should retry on another replica. */
export class ShuttingDownError extends BrokerError {
  readonly code = "BROKER_SHUTTING_DOWN";
  constructor() {
    super(SHUTDOWN_MESSAGE);
  }
}

/**
 * The shared store (Redis: credentials, the quota ledger, the refresh lock)
 * cannot be reached. Not a BrokerError: the token manager decides what an
 * outage means (serve what it holds, fetch on its own as a last resort);
 * one that reaches a caller is UNAVAILABLE, without the Redis detail.
 */
export class StoreUnavailableError extends CodedError {
  readonly code: string = "STORE_UNAVAILABLE";
}
