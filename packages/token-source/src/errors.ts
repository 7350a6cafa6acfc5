import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** `token()` has no valid token to give: none came yet, or the last one expired. */
export class TokenUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenUnavailableError";
  }
}

/** The source was closed (or its signal aborted) before it held a token. */
export class TokenSourceClosedError extends Error {
  constructor(message = "the token source was closed") {
    super(message);
    this.name = "TokenSourceClosedError";
  }
}

/**
 * True when the broker says a user must authorize again (a per-user token
 * whose grant is gone: FAILED_PRECONDITION with reason REAUTHORIZE). No retry
 * helps; send the user through WeChat's authorization.
 */
export function isReauthorize(error: unknown): boolean {
  if (!(error instanceof ConnectError) || error.code !== Code.FailedPrecondition) return false;
  return error.findDetails(ErrorInfoSchema).some((i) => i.reason === "REAUTHORIZE");
}
