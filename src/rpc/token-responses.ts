import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetTokenResponse,
  GetTokenResponseSchema,
  type WatchTokenResponse,
  WatchTokenResponseSchema,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { CredentialKey, StoredCredential } from "../core/credential.js";
import { toTokenMessage } from "./token-message.js";

/** The responses built from one credential version, each for the second it was built in. */
interface Slots {
  get?: Slot<GetTokenResponse>;
  getOverdue?: Slot<GetTokenResponse>;
  watchFirst?: Slot<WatchTokenResponse>;
  watchUpdate?: Slot<WatchTokenResponse>;
}

interface Slot<M> {
  readonly expiresAt: number;
  readonly second: number;
  readonly message: M;
}

/**
 * One response message per credential version, kind of response and second
 * of `expires_in`, shared by every call that sends it in that second: a
 * refresh seen by 10,000 watchers builds one WatchTokenResponse, and a busy
 * GetToken builds one message a second instead of one per call. The gRPC
 * adapter caches each message's encoding, so sharing also saves the
 * serialization. Messages are never mutated after they are built.
 * `expiresAt` is the end clients are told (see toTokenMessage); `refreshAfter`
 * is fixed per version, so it needs no slot of its own.
 */
export class TokenResponses {
  readonly #slots = new WeakMap<StoredCredential, Slots>();

  getToken(
    key: CredentialKey,
    credential: StoredCredential,
    now: number,
    overdue: boolean,
    expiresAt = credential.expiresAt,
    refreshAfter?: number,
  ): GetTokenResponse {
    return this.#cached(credential, overdue ? "getOverdue" : "get", now, expiresAt, () =>
      create(GetTokenResponseSchema, {
        token: toTokenMessage(key, credential, now, overdue, expiresAt, refreshAfter),
      }),
    );
  }

  watchToken(
    key: CredentialKey,
    credential: StoredCredential,
    now: number,
    isUpdate: boolean,
    expiresAt = credential.expiresAt,
    refreshAfter?: number,
  ): WatchTokenResponse {
    return this.#cached(credential, isUpdate ? "watchUpdate" : "watchFirst", now, expiresAt, () =>
      create(WatchTokenResponseSchema, {
        token: toTokenMessage(key, credential, now, false, expiresAt, refreshAfter),
        ...(isUpdate && credential.previousValidUntil !== undefined
          ? { previousValidUntil: timestampFromMs(credential.previousValidUntil) }
          : {}),
      }),
    );
  }

  #cached<S extends keyof Slots>(
    credential: StoredCredential,
    slot: S,
    now: number,
    expiresAt: number,
    build: () => NonNullable<Slots[S]>["message"],
  ): NonNullable<Slots[S]>["message"] {
    const second = Math.floor((expiresAt - now) / 1000);
    let slots = this.#slots.get(credential);
    if (!slots) {
      slots = {};
      this.#slots.set(credential, slots);
    }
    const held = slots[slot];
    if (held && held.second === second && held.expiresAt === expiresAt) return held.message;
    const message = build();
    slots[slot] = { expiresAt, second, message } as Slots[S];
    return message;
  }
}
