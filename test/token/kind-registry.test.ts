import { describe, expect, it } from "vitest";
import type { CredentialKindSpec } from "../../src/core/kind.js";
import { type AccountTypeSpec, KindRegistry } from "../../src/core/kind-registry.js";
import { KINDS } from "../../src/credentials/index.js";

/**
 * One kind name, several families: WeCom's access_token is fetched from
 * another host than an official account's, so the registry serves each
 * account type its own spec, while names, proto numbers and subjects stay
 * one vocabulary for clients.
 */

const type = (name: string): AccountTypeSpec => ({ name, label: name, endpoints: [] });
const base = KINDS.spec("access_token");
const spec = (over: Partial<CredentialKindSpec>): CredentialKindSpec => ({ ...base, ...over });

describe("KindRegistry", () => {
  it("serves each account type its own spec of a kind registered by two families", () => {
    const a = spec({ accountTypes: ["a"] });
    const b = spec({ accountTypes: ["b"], sameValueRetry: "at_end" });
    const r = new KindRegistry([type("a"), type("b")], [a, b]);
    expect(r.forAccount("a", "access_token")).toBe(a);
    expect(r.forAccount("b", "access_token")).toBe(b);
    expect(r.forAccount("c", "access_token")).toBeUndefined();
    expect(r.get("access_token")).toBe(a);
    expect(r.byProto(1)).toBe(a);
    expect(r.kindsOf("b")).toEqual(["access_token"]);
    expect(r.names()).toEqual(["access_token"]);
  });

  it("refuses two specs of one name that disagree on the proto number or subject, or share an account type", () => {
    const a = spec({ accountTypes: ["a"] });
    expect(
      () =>
        new KindRegistry(
          [type("a"), type("b")],
          [a, spec({ accountTypes: ["b"], protoNumber: 9 })],
        ),
    ).toThrow(/another proto number or subject/);
    expect(
      () =>
        new KindRegistry(
          [type("a"), type("b")],
          [a, spec({ accountTypes: ["b"], subject: "openid" })],
        ),
    ).toThrow(/another proto number or subject/);
    expect(() => new KindRegistry([type("a")], [a, spec({ accountTypes: ["a"] })])).toThrow(
      /twice for account type a/,
    );
    expect(
      () => new KindRegistry([type("a")], [a, spec({ name: "other", accountTypes: ["a"] })]),
    ).toThrow(/proto number 1 is access_token's/);
  });

  it("checks a kind's parent per account type", () => {
    const ticket = spec({
      name: "ticket",
      protoNumber: 2,
      accountTypes: ["a", "b"],
      dependsOn: "access_token",
    });
    expect(
      () => new KindRegistry([type("a"), type("b")], [spec({ accountTypes: ["a"] }), ticket]),
    ).toThrow(/account type b does not have/);
  });
});
