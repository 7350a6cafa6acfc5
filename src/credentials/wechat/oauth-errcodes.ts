import type { ErrcodeCategory, ErrcodeTable } from "../../core/kind.js";
import { wechatErrcodes } from "./errcodes.js";

/**
 * How web OAuth's errcodes read (/sns/oauth2/*, facts §7 and §12 C7). The
 * grant codes are the user's to fix by authorizing again; the account's own
 * (a wrong appid or secret, 45011) read as on the token endpoint.
 */
const GRANT: ReadonlyMap<number, string> = new Map([
  [40029, "the authorization code is invalid (unknown, expired, or issued to another appid)"],
  [40163, "the authorization code was already used"],
  [42003, "the authorization code expired (codes live 5 minutes)"],
  [40030, "the refresh token is invalid"],
  [42002, "the refresh token expired (it lives 30 days and is never extended)"],
  [42007, "the user changed their WeChat password, which voids their tokens"],
  [41003, "the refresh token is missing"],
]);

export const oauthErrcodes: ErrcodeTable = {
  classify: (errcode, endpoint): ErrcodeCategory =>
    GRANT.has(errcode) ? "grant" : wechatErrcodes.classify(errcode, endpoint),
  remedy: (errcode, endpoint) => GRANT.get(errcode) ?? wechatErrcodes.remedy(errcode, endpoint),
  // What a client reports about a user token it was refused with.
  stale: [40001, 42001, 40014],
};

/** The code itself was bad (the request's fault): INVALID_ARGUMENT rather than FAILED_PRECONDITION. */
export const BAD_CODE_ERRCODE = 40029;
