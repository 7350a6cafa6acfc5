import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { never, startTokenHarness, type TokenHarness } from "../helpers/token-harness.js";

const TOKEN = "/cgi-bin/token";

describe("InvalidateToken (compare-and-refresh)", () => {
  let h: TokenHarness;
  beforeEach(async () => {
    h = await startTokenHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("1000 concurrent reports of the current value cause exactly one refresh, and one caller is told it refreshed", async () => {
    const stale = await h.manager.get("oa", "access_token", never);
    const results = await Promise.all(
      Array.from({ length: 1000 }, () =>
        h.manager.invalidate("oa", "access_token", stale.value, 40001, never),
      ),
    );
    expect(h.calls(TOKEN)).toBe(2);
    expect(results.filter((r) => r.outcome === "refreshed")).toHaveLength(1);
    const others = new Set(results.filter((r) => r.outcome !== "refreshed").map((r) => r.outcome));
    expect([...others].every((o) => o === "joined_refresh" || o === "already_replaced")).toBe(true);
    const values = new Set(results.map((r) => r.credential.value));
    expect(values.size).toBe(1);
    expect(values.has(stale.value)).toBe(false);
    expect(results[0]?.credential.version).toBe(2);
  });

  it("a report about an already replaced value fetches nothing and returns the current token", async () => {
    const v1 = await h.manager.get("oa", "access_token", never);
    await h.manager.invalidate("oa", "access_token", v1.value, 40001, never);
    const again = await h.manager.invalidate("oa", "access_token", v1.value, 40001, never);
    expect(again.outcome).toBe("already_replaced");
    expect(again.credential.version).toBe(2);
    expect(h.calls(TOKEN)).toBe(2);
  });

  it("a report of a value the broker never issued fetches nothing beyond the normal cold fetch", async () => {
    const r = await h.manager.invalidate(
      "oa",
      "access_token",
      "13_not-a-token-we-issued",
      40001,
      never,
    );
    expect(r.outcome).toBe("already_replaced");
    expect(r.credential.version).toBe(1);
    expect(h.calls(TOKEN)).toBe(1);
  });

  it("for a stable token WeChat still considers current, confirms it instead of inventing a rotation", async () => {
    const st = await h.manager.get("st", "access_token", never);
    const r = await h.manager.invalidate("st", "access_token", st.value, 40001, never);
    expect(r.outcome).toBe("confirmed_current");
    expect(r.credential).toEqual(st);
    expect(h.calls("/cgi-bin/stable_token")).toBe(2);
  });

  it("after a foreign party rotated the token, a report gets the new valid one", async () => {
    const ours = await h.manager.get("oa", "access_token", never);
    // Someone else calls /cgi-bin/token twice for our appid: our token dies at once (R8).
    for (let i = 0; i < 2; i++) {
      await fetch(
        `${h.emulatorUrl}/cgi-bin/token?grant_type=client_credential&appid=wx0000000000000oa1&secret=oa-secret-0123456789`,
      );
    }
    expect(h.emulator.control.checkToken(ours.value).valid).toBe(false);
    const r = await h.manager.invalidate("oa", "access_token", ours.value, 40001, never);
    expect(r.outcome).toBe("refreshed");
    expect(h.emulator.control.checkToken(r.credential.value).valid).toBe(true);
  });
});
