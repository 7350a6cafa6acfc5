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
