import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  type ExchangeCodeResponse,
  OAuthService,
} from "../../gen/tokenbroker/v1/oauth_service_pb.js";
import { type Token, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKey } from "../core/credential.js";
import { kindToProto } from "../rpc/kinds.js";
import type { ServiceRegistration } from "../server/index.js";
import { type CallOutcome, type CallScope, invokeUnary, type Verdict } from "./invoke.js";

/** One call's identity and scope, and where the chain reports how far it got. */
export interface CallCtx {
  readonly verdict: Verdict;
  readonly scope: CallScope;
  readonly outcome: CallOutcome;
}

/**
 * The broker RPCs the façade speaks through, each run through the
 * registered service's chain (invoke.ts): what a WeChat endpoint asks
 * becomes GetToken, InvalidateToken, AdminService.ForceRefresh or
 * OAuthService.ExchangeCode, with the same permissions, limits, audit lines
 * and metrics as over gRPC.
 */
export class BrokerCalls {
  readonly #token: ServiceRegistration;
  readonly #admin: ServiceRegistration;
  readonly #oauth: ServiceRegistration;

  constructor(services: readonly ServiceRegistration[]) {
    const find = (typeName: string) => {
      const reg = services.find((s) => s.service.typeName === typeName);
      if (!reg) throw new Error(`the WeChat façade needs ${typeName}, which is not served`);
      return reg;
    };
    this.#token = find(TokenService.typeName);
    this.#admin = find(AdminService.typeName);
    this.#oauth = find(OAuthService.typeName);
  }

  async getToken(key: CredentialKey, c: CallCtx): Promise<Token> {
    const res = await invokeUnary(
      this.#token,
      TokenService.method.getToken,
      { appId: key.appId, kind: kindToProto(key.kind), subject: key.subject ?? "" },
      c.verdict,
      c.scope,
      c.outcome,
    );
    return required(res.token);
  }

  /** Compare-and-refresh: the broker's current token after `rejected` was reported. */
  async invalidate(
    key: CredentialKey,
    rejected: string,
    errcode: number,
    c: CallCtx,
  ): Promise<Token> {
    const res = await invokeUnary(
      this.#token,
      TokenService.method.invalidateToken,
      {
        appId: key.appId,
        kind: kindToProto(key.kind),
        subject: key.subject ?? "",
        rejectedValue: rejected,
        errcode,
      },
      c.verdict,
      c.scope,
      c.outcome,
    );
    return required(res.token);
  }

  /** The operator's leak response (needs the admin permission): a new stable token now. */
  async forceRefresh(appId: string, reason: string, c: CallCtx): Promise<Token> {
    const res = await invokeUnary(
      this.#admin,
      AdminService.method.forceRefresh,
      { appId, reason },
      c.verdict,
      c.scope,
      c.outcome,
    );
    return required(res.token);
  }

  /** The user's grant for a code: one WeChat call per code, across callers and replicas. */
  exchangeCode(appId: string, code: string, c: CallCtx): Promise<ExchangeCodeResponse> {
    return invokeUnary(
      this.#oauth,
      OAuthService.method.exchangeCode,
      { appId, code },
      c.verdict,
      c.scope,
      c.outcome,
    );
  }
}

function required(token: Token | undefined): Token {
  if (!token) throw new Error("the broker answered without a token");
  return token;
}
