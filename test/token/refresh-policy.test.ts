import { describe, expect, it } from "vitest";
import type { StoredCredential } from "../../src/core/credential.js";
import { KINDS } from "../../src/credentials/index.js";
import {
  CredentialRules,
  DEFAULT_REFRESH_POLICY as P,
  retryDelayMs,
} from "../../src/token/refresh-policy.js";

/** The rules of `kind` on an official account using `mode` tokens. */
const rules = (kind: string, mode: "classic" | "stable" = "classic") =>
  new CredentialRules(
    KINDS.spec(kind),
    {
      id: "shop",
      type: "official_account",
      appid: "wx1",
      secret: { reveal: () => "s" },
      tokenMode: mode,
    },
    P,
  );

const H2 = 7_200_000;
const cred = (fetchedAt: number, lifetimeMs: number): StoredCredential => ({
  value: "v",
  version: 1,
  fetchedAt,
  expiresAt: fetchedAt + lifetimeMs,
});

describe("isServable", () => {
  // An access token is handed out until 30 s (capped at 5% of its lifetime) before expiry.
  it.each([
    ["7200 s token, 30 s + 1 ms left", H2, H2 - 30_001, true],
    ["7200 s token, exactly 30 s left", H2, H2 - 30_000, false],
    ["60 s token, 3 s + 1 ms left (5% cap)", 60_000, 60_000 - 3_001, true],
    ["60 s token, exactly 3 s left", 60_000, 60_000 - 3_000, false],
    ["expired", H2, H2 + 1, false],
  ])("%s", (_name, lifetime, at, expected) => {
    expect(rules("access_token").isServable(cred(0, lifetime), at)).toBe(expected);
  });

  it("hands tickets out until 1 s before expiry", () => {
    expect(rules("jsapi_ticket").isServable(cred(0, H2), H2 - 1_001)).toBe(true);
    expect(rules("jsapi_ticket").isServable(cred(0, H2), H2 - 1_000)).toBe(false);
  });
});

describe("refreshAt", () => {
  it("refreshes a classic token 10 minutes before expiry, earlier by up to 20% jitter", () => {
    const c = cred(0, H2);
    expect(rules("access_token", "classic").refreshAt(c, 0)).toBe(H2 - 600_000);
    expect(rules("access_token", "classic").refreshAt(c, 0.999999)).toBeCloseTo(H2 - 720_000, -1);
  });

  it("refreshes a stable token inside WeChat's last-5-minutes rotation window", () => {
    const c = cred(0, H2);
    for (const r of [0, 0.5, 0.999999]) {
      const left = H2 - rules("access_token", "stable").refreshAt(c, r);
      expect(left).toBeGreaterThanOrEqual(240_000);
      expect(left).toBeLessThan(300_000);
    }
  });

  it("caps the margin at a quarter of short lifetimes", () => {
    expect(rules("access_token", "classic").refreshAt(cred(1000, 60_000), 0)).toBe(1000 + 45_000);
  });
});

describe("retryDelayMs", () => {
  it("doubles from 1 s up to the 60 s cap, within ±20%", () => {
    expect(retryDelayMs(1, false, P, 0.5)).toBe(1000);
    expect(retryDelayMs(2, false, P, 0.5)).toBe(2000);
    expect(retryDelayMs(10, false, P, 0.5)).toBe(60_000);
    expect(retryDelayMs(1, false, P, 0)).toBe(800);
    expect(retryDelayMs(1, false, P, 0.999999)).toBe(1200);
  });

  it("waits the slow delay after config or quota errors", () => {
    expect(retryDelayMs(1, true, P, 0.5)).toBe(300_000);
  });
});

describe("nextAttemptAfterSameValue", () => {
  it("waits for a ticket to become unservable before asking again", () => {
    expect(rules("jsapi_ticket").nextAttemptAfterSameValue(cred(0, H2), 100_000)).toBe(H2 - 1000);
  });
  it("once a WeCom token stops being handed out, waits for its expiry: WeCom returns the same one until then", () => {
    const spec = KINDS.forAccount("wecom", "access_token");
    if (!spec) throw new Error("no WeCom access_token");
    const account = { id: "hr", type: "wecom", appid: "ww1", secret: { reveal: () => "s" } };
    const wecom = new CredentialRules(spec, { ...account, tokenMode: "classic" }, P);
    expect(wecom.nextAttemptAfterSameValue(cred(0, H2), H2 - 60_000)).toBe(H2 - 30_000);
    expect(wecom.nextAttemptAfterSameValue(cred(0, H2), H2 - 29_000)).toBe(H2);
  });
  it("halves the distance for an access token, but waits at least the first retry delay", () => {
    expect(rules("access_token").nextAttemptAfterSameValue(cred(0, H2), 0)).toBe((H2 - 30_000) / 2);
    expect(rules("access_token").nextAttemptAfterSameValue(cred(0, H2), H2 - 30_500)).toBe(
      H2 - 30_500 + 1000,
    );
  });
});
