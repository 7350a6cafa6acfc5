import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Token, TokenSchema } from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKey, StoredCredential } from "../core/credential.js";
import { fingerprint } from "../shared/fingerprint.js";
import { kindToProto } from "./kinds.js";

/**
 * The wire form of a stored credential; `expires_in` is counted from `now`.
 * `expiresAt`: the end clients are told (TokenManager.reportedExpiresAt),
 * which for a classic token may be before its stored expiry; `refreshAfter`:
 * when the broker will replace it (TokenManager.refreshAfter).
 */
export function toTokenMessage(
  key: CredentialKey,
  c: StoredCredential,
  now: number,
  refreshOverdue = false,
  expiresAt = c.expiresAt,
  refreshAfter?: number,
): Token {
  return create(TokenSchema, {
    appId: key.appId,
    kind: kindToProto(key.kind),
    value: c.value,
    expiresAt: timestampFromMs(expiresAt),
    expiresIn: BigInt(Math.max(0, Math.floor((expiresAt - now) / 1000))),
    version: BigInt(c.version),
    fetchedAt: timestampFromMs(c.fetchedAt),
    fingerprint: fingerprint(c.value),
    refreshOverdue,
    subject: key.subject ?? "",
    ...(refreshAfter === undefined ? {} : { refreshAfter: timestampFromMs(refreshAfter) }),
    ...(c.renewableUntil === undefined
      ? {}
      : { refreshExpiresAt: timestampFromMs(c.renewableUntil) }),
  });
}
