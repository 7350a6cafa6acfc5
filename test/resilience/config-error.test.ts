import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { UpstreamConfigError } from "../../src/shared/errors.js";
import { toConnectError } from "../../src/shared/to-connect-error.js";
import {
  never,
  OA,
  type ResilienceHarness,
  startResilienceHarness,
} from "../helpers/resilience-harness.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** What an admin set in the WeChat console; the broker still has OA.secret. */
const ROTATED_SECRET = "rotated-by-admin-5f4e3d2c1b0a";

let h: ResilienceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("AppSecret wrong (40125)", () => {
  it("fails callers with a config error, holds off WeChat, and alerts exactly once until fixed", async () => {
    h = await startResilienceHarness();
    const harness = h;
    harness.emulator.control.resetSecret(OA.appid, ROTATED_SECRET);

    // 100 concurrent cold callers share one fetch.
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, () => harness.manager.get(OA.id, "access_token", never)),
    );
    await harness.settle();
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(0);
    for (const r of results) {
      const err = (r as PromiseRejectedResult).reason as unknown;
      expect(err).toBeInstanceOf(UpstreamConfigError);
      const e = err as UpstreamConfigError;
      expect(e.errcode).toBe(40125);
      expect(e.message).toContain("check the app's AppSecret");
      expect(e.message).not.toContain(OA.secret);
      expect(e.message).not.toContain(ROTATED_SECRET);
      expect(toConnectError(err).code).toBe(Code.FailedPrecondition);
    }
    expect(harness.calls()).toBe(1); // config errors are not retried inline
    expect(harness.alerts("wechat_config_error", "firing")).toHaveLength(1);

    // Callers keep coming, one a second, for 10 minutes. Nothing is stored,
    // so no refresh is scheduled; a caller's fetch happens only when the
    // failure hold of a config error (retryMaxMs = 60 s) has run out. Bound:
    // calls ≤ 1 + ⌈600 s / 60 s⌉ = 11 (here: at 0, 60, …, 600 s).
    const start = harness.clock.now();
    let callerErrors = 0;
    await harness.advance(10 * MINUTE, {
      async onStep() {
        await harness.manager.get(OA.id, "access_token", never).then(
          () => {},
          (err: unknown) => {
            expect(err).toBeInstanceOf(UpstreamConfigError);
            callerErrors++;
          },
        );
      },
    });
    expect(harness.clock.now() - start).toBe(10 * MINUTE);
    expect(callerErrors).toBe(600);
    expect(harness.calls()).toBeLessThanOrEqual(1 + Math.ceil(600 / 60));
    expect(harness.calls()).toBe(11);
    expect(harness.successes()).toBe(0);
    // Eleven failed refreshes, one notification.
    const firing = harness.alerts("wechat_config_error", "firing");
    expect(firing).toHaveLength(1);
    expect(firing[0]).toEqual({
      alert: "wechat_config_error",
      state: "firing",
      severity: "critical",
      app: OA.id,
      kind: null,
      summary: expect.stringContaining("40125"),
      details: { errcode: 40125, kind: "access_token" },
      at: new Date(start).toISOString(),
      source: "wechat-token-broker",
    });
    expect(harness.alerts("wechat_config_error", "resolved")).toHaveLength(0);

    // The operator puts the right secret back; the next fetch after the hold succeeds.
    harness.emulator.control.resetSecret(OA.appid, OA.secret);
    let token: string | undefined;
    await harness.advance(MINUTE, {
      async onStep() {
        token ??= await harness.manager
          .get(OA.id, "access_token", never)
          .then((c) => c.value)
          .catch(() => undefined);
      },
    });
    expect(token).toBeDefined();
    expect(harness.emulator.control.checkToken(token ?? "").valid).toBe(true);
    expect(harness.calls()).toBe(12);
    expect(harness.successes()).toBe(1);
    expect(harness.alerts("wechat_config_error", "firing")).toHaveLength(1);
    expect(harness.alerts("wechat_config_error", "resolved")).toHaveLength(1);
    expect(harness.deliveries).toHaveLength(2);

    const everything = harness.logs() + harness.rawDeliveries.join("\n");
    expect(everything).not.toContain(OA.secret);
    expect(everything).not.toContain(ROTATED_SECRET);
    expect(everything).not.toContain(token);
  });
});
