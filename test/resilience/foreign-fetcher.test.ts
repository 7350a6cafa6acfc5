import { afterEach, describe, expect, it } from "vitest";
import { fingerprint } from "../../src/shared/fingerprint.js";
import {
  never,
  OA,
  type ResilienceHarness,
  startResilienceHarness,
} from "../helpers/resilience-harness.js";

const MINUTE = 60_000;

let h: ResilienceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("another party fetching tokens for the appid", () => {
  it("refreshes on the client's 40001 report and alerts once with evidence; a second rotation does not alert again", async () => {
    h = await startResilienceHarness();
    const ours = await h.manager.get(OA.id, "access_token", never);
    await h.advance(MINUTE);

    // Two direct fetches: the first makes ours the grace token, the second kills it.
    await h.foreignFetch();
    await h.foreignFetch();
    expect(h.emulator.control.checkToken(ours.value)).toMatchObject({
      valid: false,
      errcode: 40001,
    });
    expect(h.calls()).toBe(3);

    const first = await h.manager.invalidate(OA.id, "access_token", ours.value, 40001, never);
    await h.settle();
    expect(first.outcome).toBe("refreshed");
    expect(first.credential.version).toBe(2);
    expect(h.emulator.control.checkToken(first.credential.value).valid).toBe(true);
    expect(h.calls()).toBe(4);
    const firing = h.alerts("foreign_token_fetcher", "firing");
    expect(firing).toHaveLength(1);
    expect(firing[0]).toMatchObject({
      alert: "foreign_token_fetcher",
      state: "firing",
      severity: "critical",
      app: OA.id,
      details: {
        errcode: 40001,
        rejectedFingerprint: fingerprint(ours.value),
        ageSeconds: 60,
        remainingSeconds: 7200 - 60,
        version: 1,
      },
    });
    expect(firing[0]?.summary).toContain("7140 s before it was due to expire");

    // A minute later it happens again: the broker refreshes, the alert is
    // already firing and is not sent again.
    await h.advance(MINUTE);
    await h.foreignFetch();
    await h.foreignFetch();
    const second = await h.manager.invalidate(
      OA.id,
      "access_token",
      first.credential.value,
      40001,
      never,
    );
    await h.settle();
    expect(second.outcome).toBe("refreshed");
    expect(second.credential.version).toBe(3);
    expect(h.calls()).toBe(7);
    expect(h.alerts("foreign_token_fetcher", "firing")).toHaveLength(1);
    expect(h.deliveries.filter((d) => d.alert === "foreign_token_fetcher")).toHaveLength(1);
    const active = h.observability.alerts.active().find((a) => a.name === "foreign_token_fetcher");
    expect(active?.raises).toBe(2);
    expect(active?.details.rejectedFingerprint).toBe(fingerprint(first.credential.value));

    // Evidence only: no token value in what was sent.
    const sent = h.rawDeliveries.join("\n");
    for (const value of [ours.value, first.credential.value, second.credential.value]) {
      expect(sent).not.toContain(value);
    }
  });
});
