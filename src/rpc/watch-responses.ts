import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type WatchTokenResponse,
  WatchTokenResponseSchema,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKey, StoredCredential } from "../token/credential.js";
import { toTokenMessage } from "./token-message.js";

interface Slot {
  readonly second: number;
  readonly message: WatchTokenResponse;
}

/**
 * One WatchTokenResponse per credential version, kind of message (a stream's
 * first, or an update) and second of `expires_in`, shared by every stream that
 * sends it in that second. With 10,000 watchers a refresh then builds (and the
 * gRPC adapter serializes) one message instead of 10,000. Messages are never
 * mutated after they are built.
 */
export class WatchResponses {
  readonly #slots = new WeakMap<StoredCredential, { first?: Slot; update?: Slot }>();

  get(
    key: CredentialKey,
    credential: StoredCredential,
    now: number,
    isUpdate: boolean,
  ): WatchTokenResponse {
    const second = Math.floor((credential.expiresAt - now) / 1000);
    const slots = this.#slots.get(credential) ?? {};
    const cached = isUpdate ? slots.update : slots.first;
    if (cached && cached.second === second) return cached.message;
    const message = create(WatchTokenResponseSchema, {
      token: toTokenMessage(key, credential, now),
      ...(isUpdate && credential.previousValidUntil !== undefined
        ? { previousValidUntil: timestampFromMs(credential.previousValidUntil) }
        : {}),
    });
    this.#slots.set(credential, { ...slots, [isUpdate ? "update" : "first"]: { second, message } });
    return message;
  }
}
