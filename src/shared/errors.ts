/**
 * The broker's error vocabulary. Every failure a caller can see is one of
 * these; `src/rpc/to-connect-error.ts` maps them to gRPC status codes in one
 * place. Messages are written for the person reading them in a client log:
 * they say what happened and what to do, and never contain a secret or a full
 * token value.
 */
export abstract class BrokerError extends Error {
  /** Stable machine-readable code, e.g. for metrics labels and alerts. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
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

/** The request is valid but does not fit the app's configuration (e.g. force-refreshing a classic token). */
export class FailedPreconditionError extends BrokerError {
  readonly code = "BROKER_FAILED_PRECONDITION";
}

/** WeChat's quota for this credential is used up (45009 / 45011). */
export class QuotaExhaustedError extends BrokerError {
  readonly code = "BROKER_QUOTA_EXHAUSTED";
  constructor(
    message: string,
    readonly errcode: number,
  ) {
    super(message);
  }
}

/** WeChat cannot be reached or keeps failing, and no valid credential is cached. */
export class UpstreamUnavailableError extends BrokerError {
  readonly code = "BROKER_UPSTREAM_UNAVAILABLE";
}

/** The broker is draining; the caller should retry on another replica. */
export class ShuttingDownError extends BrokerError {
  readonly code = "BROKER_SHUTTING_DOWN";
  constructor() {
    super("broker is shutting down; reconnect to another replica");
  }
}
