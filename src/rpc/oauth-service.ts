import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OAuthService } from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { SUBJECT_PATTERN } from "../core/credential.js";
import { type CodeExchange, USER_TOKEN_KIND } from "../oauth/code-exchange.js";
import { validateCode } from "../oauth/exchange-outcome.js";
import { peerKey } from "../server/index.js";
import type { Clock } from "../shared/clock.js";
import { InvalidArgumentError } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { isUnexpected, toConnectError } from "../shared/to-connect-error.js";
import type { TokenManager } from "../token/token-manager.js";
import { callerOf } from "./caller.js";
import { codeName } from "./interceptors/outcome.js";
import { kindToProto } from "./kinds.js";
import { toTokenMessage } from "./token-message.js";
import { validateCredentialRequest } from "./validate.js";

export interface OAuthServiceDeps {
  manager: TokenManager;
  exchange: CodeExchange;
  clock: Clock;
  logger: Logger;
  /** One line per exchange and forget: who, which app and openid; never a code or token. */
  audit?: Logger;
}

/**
 * The OAuthService handlers: the user's grant from a code (once per code,
 * CodeExchange) and its deletion. The user's token itself is then served by
 * TokenService like every credential.
 */
export function createOAuthService(deps: OAuthServiceDeps): ServiceImpl<typeof OAuthService> {
  const { manager, clock } = deps;
  const fail = (err: unknown, method: string) => {
    if (isUnexpected(err)) deps.logger.error({ err, method }, "unexpected error in handler");
    return toConnectError(err);
  };
  const appOf = (appId: string) =>
    validateCredentialRequest({ appId, kind: kindToProto(USER_TOKEN_KIND) }).appId;

  return {
    async exchangeCode(req, ctx) {
      const client = callerOf(ctx);
      let outcome = "error";
      let openid: string | undefined;
      try {
        const appId = appOf(req.appId);
        const code = validateCode(req.code);
        const result = await deps.exchange.exchange(appId, code, client, ctx.signal);
        const ok = result.outcome;
        outcome = "ok";
        openid = ok.openid;
        const key = { appId, kind: USER_TOKEN_KIND, subject: ok.openid };
        // The grant's current token: it may have been refreshed since the first exchange.
        const credential = manager.cached(appId, USER_TOKEN_KIND, ok.openid) ?? ok.credential;
        return {
          openid: ok.openid,
          unionid: ok.unionid ?? "",
          scope: ok.scope,
          snapshotUser: ok.snapshotUser,
          token: toTokenMessage(key, credential, clock.now()),
          ...(credential.renewableUntil === undefined
            ? {}
            : { refreshExpiresAt: timestampFromMs(credential.renewableUntil) }),
        };
      } catch (err) {
        outcome = codeName(toConnectError(err));
        throw fail(err, "ExchangeCode");
      } finally {
        deps.audit?.info(
          {
            event: "oauth_exchange",
            client,
            address: ctx.values.get(peerKey)?.address,
            app: req.appId.slice(0, 64),
            openid,
            outcome,
          },
          "ExchangeCode",
        );
      }
    },

    async forgetUser(req, ctx) {
      const client = callerOf(ctx);
      try {
        const appId = appOf(req.appId);
        if (!SUBJECT_PATTERN.test(req.openid)) {
          throw new InvalidArgumentError(
            "openid is required: the user's openid for this app (1-128 letters, digits, '_' or '-')",
          );
        }
        const forgotten = await manager.grants.forget({
          appId,
          kind: USER_TOKEN_KIND,
          subject: req.openid,
        });
        deps.audit?.info(
          {
            event: "oauth_forget",
            client,
            address: ctx.values.get(peerKey)?.address,
            app: appId,
            openid: req.openid,
            forgotten,
          },
          "ForgetUser",
        );
        return { forgotten };
      } catch (err) {
        throw fail(err, "ForgetUser");
      }
    },
  };
}
