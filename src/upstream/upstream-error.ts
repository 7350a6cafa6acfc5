import { classifyErrcode, type ErrcodeCategory } from "./wechat-errors.js";

/**
 * A failed call to WeChat, as seen by the upstream client. Either WeChat
 * answered with an errcode (`errcode` set), or the call failed below the API
 * (network, timeout, HTTP status, unparseable body; `errcode` undefined).
 *
 * The message names the endpoint path only: request URLs of /cgi-bin/token
 * carry the AppSecret in the query string and are never included. For a
 * WeChat answer, `detail` is its errmsg as scrubbed by the client
 * (scrub-errmsg.ts), never the raw text.
 */
export class UpstreamError extends Error {
  readonly category: ErrcodeCategory;

  constructor(
    readonly endpoint: string,
    readonly detail: string,
    readonly errcode?: number,
    options?: { cause?: unknown; category?: ErrcodeCategory },
  ) {
    super(
      errcode === undefined
        ? `WeChat ${endpoint} failed: ${detail}`
        : `WeChat ${endpoint} returned errcode ${errcode}: ${detail}`,
      options,
    );
    this.name = "UpstreamError";
    this.category =
      options?.category ??
      (errcode === undefined ? "retryable" : classifyErrcode(errcode, endpoint));
  }
}
