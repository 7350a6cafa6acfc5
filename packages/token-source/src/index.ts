export type { Clock } from "./clock.js";
export { isReauthorize, TokenSourceClosedError, TokenUnavailableError } from "./errors.js";
export { TokenKind } from "./gen/tokenbroker/v1/token_service_pb.js";
export type { HeldToken, TokenState } from "./held-token.js";
export type {
  TokenKindName,
  TokenSourceCredentials,
  TokenSourceOptions,
  TokenSourceTuning,
} from "./options.js";
export {
  createTokenSource,
  openTokenSource,
  TokenSource,
  type TokenSourceStatus,
} from "./token-source.js";
