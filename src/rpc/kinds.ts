import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { InvalidArgumentError } from "../shared/errors.js";
import type { CredentialKind } from "../token/credential.js";

const TO_DOMAIN: ReadonlyMap<TokenKind, CredentialKind> = new Map([
  [TokenKind.ACCESS_TOKEN, "access_token"],
  [TokenKind.JSAPI_TICKET, "jsapi_ticket"],
  [TokenKind.WX_CARD_TICKET, "wx_card_ticket"],
]);

const TO_PROTO: ReadonlyMap<CredentialKind, TokenKind> = new Map(
  [...TO_DOMAIN].map(([p, d]) => [d, p]),
);

const SUPPORTED = "TOKEN_KIND_ACCESS_TOKEN, TOKEN_KIND_JSAPI_TICKET, TOKEN_KIND_WX_CARD_TICKET";

/** The domain kind of a request's `kind`, or the error the caller should see. */
export function kindFromProto(kind: TokenKind): CredentialKind {
  if (kind === TokenKind.UNSPECIFIED)
    throw new InvalidArgumentError(`kind is required: one of ${SUPPORTED}`);
  const domain = TO_DOMAIN.get(kind);
  if (!domain)
    throw new InvalidArgumentError(
      `kind ${kind} is not known to this broker; use one of ${SUPPORTED}`,
    );
  return domain;
}

export function kindToProto(kind: CredentialKind): TokenKind {
  return TO_PROTO.get(kind) ?? TokenKind.UNSPECIFIED;
}
