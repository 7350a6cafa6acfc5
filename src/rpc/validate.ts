import type { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { APP_ID_PATTERN, type CredentialKey, SUBJECT_PATTERN } from "../core/credential.js";
import { InvalidArgumentError } from "../shared/errors.js";
import { kindFromProto } from "./kinds.js";

/** WeChat tokens are at most 512 characters; anything far longer is not one. */
const MAX_VALUE_CHARS = 2048;

export interface CredentialRequest {
  appId: string;
  kind: TokenKind;
  /** Absent on messages without the field (admin requests). */
  subject?: string;
}

/**
 * Checks app_id, kind and subject, the fields every TokenService request has.
 * Whether the kind needs a subject is checked against the kind when the key
 * is resolved (AppRegistry.resolveKey).
 */
export function validateCredentialRequest(req: CredentialRequest): CredentialKey {
  if (req.appId === "")
    throw new InvalidArgumentError('app_id is required (the broker\'s id of the app, e.g. "demo")');
  if (!APP_ID_PATTERN.test(req.appId)) {
    throw new InvalidArgumentError(
      "app_id must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
  }
  const kind = kindFromProto(req.kind);
  if (req.subject === undefined || req.subject === "") return { appId: req.appId, kind };
  if (!SUBJECT_PATTERN.test(req.subject))
    throw new InvalidArgumentError(
      "subject must be an openid or appid: 1-128 letters, digits, '_' or '-'",
    );
  return { appId: req.appId, kind, subject: req.subject };
}

export function validateRejectedValue(value: string): string {
  if (value === "") {
    throw new InvalidArgumentError(
      "rejected_value is required: the exact credential value WeChat rejected",
    );
  }
  if (value.length > MAX_VALUE_CHARS) {
    throw new InvalidArgumentError(
      `rejected_value is ${value.length} characters; WeChat credentials are at most 512`,
    );
  }
  return value;
}

/**
 * The errcodes that mean a credential is stale, by its family's table
 * (`stale`: for official accounts, facts §10: 40001 invalid or not latest,
 * 42001 expired, 40014 invalid; for WeCom 40014 and 42001, its 40001 being a
 * wrong secret); 0 means not given. A new credential fixes none of the
 * others, so a report of them fetches nothing.
 */
export function validateReportErrcode(errcode: number, stale: readonly number[]): number {
  if (errcode !== 0 && !stale.includes(errcode)) {
    throw new InvalidArgumentError(
      `errcode ${errcode} does not mean the credential is stale, so a new one would not help; ` +
        `InvalidateToken accepts ${stale.join(", ")}, or 0 when not known`,
    );
  }
  return errcode;
}

/** AckToken's instance: an id of the client's choosing, kept in the store and never shown. */
const INSTANCE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function validateInstance(instance: string): string {
  if (!INSTANCE_PATTERN.test(instance)) {
    throw new InvalidArgumentError(
      "instance must be 1-64 characters: letters, digits, '.', '_' or '-' (e.g. a random id per process)",
    );
  }
  return instance;
}

/** A version as Token.version carries it: 1 or more. */
export function validateVersion(version: bigint): number {
  if (version < 1n || version > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError("version is required: the Token.version the client uses");
  }
  return Number(version);
}
