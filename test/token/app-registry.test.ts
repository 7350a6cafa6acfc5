import { describe, expect, it } from "vitest";
import { InvalidArgumentError, UnknownAppError } from "../../src/shared/errors.js";
import { Secret } from "../../src/shared/secret.js";
import { AppRegistry } from "../../src/token/app.js";

const registry = new AppRegistry([
  {
    id: "mini",
    type: "mini_program",
    appid: "wx1",
    secret: new Secret("s"),
    tokenMode: "stable",
    prefetch: false,
  },
  {
    id: "oa",
    type: "official_account",
    appid: "wx2",
    secret: new Secret("s"),
    tokenMode: "classic",
    prefetch: false,
  },
]);

describe("AppRegistry", () => {
  it("gives official accounts all three kinds", () => {
    for (const kind of ["access_token", "jsapi_ticket", "wx_card_ticket"] as const) {
      expect(registry.resolve("oa", kind).appid).toBe("wx2");
    }
  });

  it("refuses tickets for a mini program, saying what it has", () => {
    expect(() => registry.resolve("mini", "jsapi_ticket")).toThrow(InvalidArgumentError);
    expect(() => registry.resolve("mini", "jsapi_ticket")).toThrow(
      "app 'mini' is a mini program, which has no jsapi_ticket; it has: access_token",
    );
  });

  it("names an unknown app", () => {
    expect(() => registry.resolve("x", "access_token")).toThrow(UnknownAppError);
  });
});
