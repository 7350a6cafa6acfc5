import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { validateCredentialRequest, validateRejectedValue } from "../../src/rpc/validate.js";
import {
  InvalidArgumentError,
  QuotaExhaustedError,
  ShuttingDownError,
  UnknownAppError,
  UpstreamConfigError,
  UpstreamUnavailableError,
} from "../../src/shared/errors.js";
import { toConnectError } from "../../src/shared/to-connect-error.js";

function codeOf(fn: () => unknown): Code | undefined {
  try {
    fn();
  } catch (err) {
    return toConnectError(err).code;
  }
  return undefined;
}

describe("request validation", () => {
  it("accepts a configured-looking app id and every known kind", () => {
    expect(validateCredentialRequest({ appId: "demo", kind: TokenKind.ACCESS_TOKEN })).toEqual({
      appId: "demo",
      kind: "access_token",
    });
    expect(
      validateCredentialRequest({ appId: "shop.v2_x-1", kind: TokenKind.WX_CARD_TICKET }).kind,
    ).toBe("wx_card_ticket");
  });

  it.each([
    ["empty app id", "", TokenKind.ACCESS_TOKEN, /app_id is required/],
    ["app id with a slash", "a/b", TokenKind.ACCESS_TOKEN, /app_id must be/],
    ["app id of 65 characters", "a".repeat(65), TokenKind.ACCESS_TOKEN, /app_id must be/],
    [
      "unspecified kind",
      "demo",
      TokenKind.UNSPECIFIED,
      /kind is required: one of TOKEN_KIND_ACCESS_TOKEN/,
    ],
    ["unknown kind number", "demo", 99 as TokenKind, /kind 99 is not known/],
  ])("rejects %s with INVALID_ARGUMENT and a helpful message", (_n, appId, kind, message) => {
    expect(() => validateCredentialRequest({ appId, kind })).toThrow(message);
    expect(codeOf(() => validateCredentialRequest({ appId, kind }))).toBe(Code.InvalidArgument);
  });

  it("passes a subject on, treats an empty one as none, and refuses a malformed one", () => {
    expect(
      validateCredentialRequest({ appId: "demo", kind: TokenKind.ACCESS_TOKEN, subject: "" }),
    ).toEqual({ appId: "demo", kind: "access_token" });
    expect(
      validateCredentialRequest({
        appId: "demo",
        kind: TokenKind.ACCESS_TOKEN,
        subject: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
      }).subject,
    ).toBe("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    for (const subject of ["a/b", "x".repeat(129), "o:1", "{tag}"]) {
      expect(
        codeOf(() =>
          validateCredentialRequest({ appId: "demo", kind: TokenKind.ACCESS_TOKEN, subject }),
        ),
        subject,
      ).toBe(Code.InvalidArgument);
    }
  });

  it("requires a plausible rejected value", () => {
    expect(() => validateRejectedValue("")).toThrow(/rejected_value is required/);
    expect(() => validateRejectedValue("x".repeat(5000))).toThrow(/at most 512/);
    expect(validateRejectedValue("tok")).toBe("tok");
  });
});

describe("toConnectError", () => {
  it.each([
    [new InvalidArgumentError("bad"), Code.InvalidArgument],
    [new UnknownAppError("nope"), Code.NotFound],
    [new UpstreamConfigError("secret wrong", 40125), Code.FailedPrecondition],
    [new QuotaExhaustedError("quota", 45009), Code.ResourceExhausted],
    [new UpstreamUnavailableError("down"), Code.Unavailable],
    [new ShuttingDownError(), Code.Unavailable],
  ])("maps %s", (err, code) => {
    const mapped = toConnectError(err);
    expect(mapped.code).toBe(code);
    expect(mapped.rawMessage).toBe(err.message);
  });

  it("passes ConnectErrors through and hides unexpected errors behind INTERNAL", () => {
    const deadline = new ConnectError("deadline", Code.DeadlineExceeded);
    expect(toConnectError(deadline)).toBe(deadline);
    const internal = toConnectError(new TypeError("secret=abc in a stack"));
    expect(internal.code).toBe(Code.Internal);
    expect(internal.rawMessage).not.toContain("abc");
  });
});
