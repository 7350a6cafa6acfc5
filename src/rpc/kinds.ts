import type { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKind } from "../core/credential.js";
import { KINDS } from "../credentials/index.js";
import { InvalidArgumentError } from "../shared/errors.js";

/** The proto names of the registered kinds, for messages: TOKEN_KIND_ACCESS_TOKEN, … */
const SUPPORTED = KINDS.kinds()
  .map((k) => `TOKEN_KIND_${k.name.toUpperCase()}`)
  .join(", ");

/** The domain kind of a request's `kind`, or the error the caller should see. */
export function kindFromProto(kind: TokenKind): CredentialKind {
  if (kind === 0) throw new InvalidArgumentError(`kind is required: one of ${SUPPORTED}`);
  const spec = KINDS.byProto(kind);
  if (!spec)
    throw new InvalidArgumentError(
      `kind ${kind} is not known to this broker; use one of ${SUPPORTED}`,
    );
  return spec.name;
}

export function kindToProto(kind: CredentialKind): TokenKind {
  return (KINDS.get(kind)?.protoNumber ?? 0) as TokenKind;
}
