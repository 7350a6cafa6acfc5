import { describe, expect, it } from "vitest";
import type { StoredCredential } from "../../src/core/credential.js";
import { TokenResponses } from "../../src/rpc/token-responses.js";

const KEY = { appId: "oa", kind: "access_token" } as const;
const T0 = 1_800_000_000_000;

function credential(version: number): StoredCredential {
  return { value: `token-value-${version}`, version, fetchedAt: T0, expiresAt: T0 + 7_200_000 };
}

describe("TokenResponses", () => {
  it("shares one GetTokenResponse per credential version and second of expires_in", () => {
    const r = new TokenResponses();
    const c = credential(1);
    // expires_in is whole seconds left: 7198 from T0+1001 ms to T0+2000 ms.
    const a = r.getToken(KEY, c, T0 + 1_001, false);
    expect(r.getToken(KEY, c, T0 + 2_000, false)).toBe(a);
    expect(a.token?.expiresIn).toBe(7198n);
    const next = r.getToken(KEY, c, T0 + 2_001, false);
    expect(next).not.toBe(a);
    expect(next.token?.expiresIn).toBe(7197n);
    expect(r.getToken(KEY, credential(2), T0 + 2_001, false)).not.toBe(next);
  });

  it("keeps overdue and on-time answers, and first and update watch messages, apart", () => {
    const r = new TokenResponses();
    const c = { ...credential(3), previousValidUntil: T0 + 300_000 };
    const onTime = r.getToken(KEY, c, T0, false);
    const overdue = r.getToken(KEY, c, T0, true);
    expect(onTime.token?.refreshOverdue).toBe(false);
    expect(overdue.token?.refreshOverdue).toBe(true);
    expect(r.getToken(KEY, c, T0, false)).toBe(onTime);

    const first = r.watchToken(KEY, c, T0, false);
    const update = r.watchToken(KEY, c, T0, true);
    expect(first.previousValidUntil).toBeUndefined();
    expect(update.previousValidUntil).toBeDefined();
    expect(r.watchToken(KEY, c, T0 - 999, true)).toBe(update);
    expect(first.token?.version).toBe(3n);
  });
});
