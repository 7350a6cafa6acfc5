import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  QuotaExhaustedError,
  UpstreamConfigError,
  UpstreamRejectedError,
} from "../../src/shared/errors.js";
import { toConnectError } from "../../src/shared/to-connect-error.js";
import {
  never,
  OA,
  type ResilienceHarness,
  startResilienceHarness,
  TOKEN_PATH,
} from "../helpers/resilience-harness.js";

/**
 * How the broker treats WeChat's answers it must not take at face value:
 * errmsg texts that echo secrets, 40001 from /cgi-bin/token itself, 45011,
 * errcodes it does not know, and 48001 (issue 9, items 6, 19, 20, 21).
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const TICKET_PATH = "/cgi-bin/ticket/getticket";

let h: ResilienceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => err,
  );

describe("WeChat's errmsg echoing the AppSecret and live tokens", () => {
  it("reaches no caller, log line or webhook: callers get the errcode and advice, unknown codes a scrubbed errmsg", async () => {
    h = await startResilienceHarness();
    const harness = h;
    const previous = (await harness.manager.get(OA.id, "access_token", never)).value;
    const current = (
      await harness.manager.invalidate(OA.id, "access_token", previous, 40001, never)
    ).credential.value;
    expect(current).not.toBe(previous);
    const leaky = `invalid appsecret ${OA.secret}, token ${current}, previous ${previous} rid: 0a1b2c3d-4e5f6a7b-8c9d0e1f`;

    // A known errcode: the errcode and the broker's advice, none of WeChat's text.
    harness.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      action: { type: "errcode", errcode: 40125, errmsg: leaky },
      times: 1,
    });
    const config = await failure(
      harness.manager.invalidate(OA.id, "access_token", current, 40001, never),
    );
    expect(config).toBeInstanceOf(UpstreamConfigError);
    const configStatus = toConnectError(config);
    expect(configStatus.code).toBe(Code.FailedPrecondition);
    expect(configStatus.rawMessage).toContain("errcode 40125");
    expect(configStatus.rawMessage).toContain("check the app's AppSecret");
    expect(configStatus.rawMessage).not.toContain("invalid appsecret");

    // An unknown errcode: the scrubbed errmsg is all there is, so it is passed on.
    await harness.advance(MINUTE); // past the failure hold
    harness.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      action: { type: "errcode", errcode: 61999, errmsg: leaky },
      times: 1,
    });
    const unknown = await failure(
      harness.manager.invalidate(OA.id, "access_token", current, 40001, never),
    );
    const unknownStatus = toConnectError(unknown);
    expect(unknownStatus.code).toBe(Code.Unknown);
    expect(unknownStatus.rawMessage).toContain("errcode 61999");
    expect(unknownStatus.rawMessage).toContain(
      "invalid appsecret [appsecret], token [credential], previous [credential] rid: 0a1b2c3d-4e5f6a7b-8c9d0e1f",
    );
    await harness.settle();

    const webhooks = harness.rawDeliveries.join("\n");
    expect(harness.alerts("wechat_config_error", "firing")).toHaveLength(1);
    expect(harness.alerts("wechat_unknown_errcode", "firing")).toHaveLength(1);
    expect(webhooks).toContain("[appsecret]");
    expect(harness.logs()).toContain("[appsecret]");
    for (const value of [OA.secret, current, previous]) {
      expect(configStatus.message).not.toContain(value);
      expect(unknownStatus.message).not.toContain(value);
      expect(harness.logs()).not.toContain(value);
      expect(webhooks).not.toContain(value);
    }
  });
});

describe("40001 from /cgi-bin/token itself (legacy answer to a wrong AppSecret)", () => {
  it("is a config error with the AppSecret remedy, not a stale token", async () => {
    h = await startResilienceHarness({ emulator: { wrongSecretErrcode: 40001 } });
    h.emulator.control.resetSecret(OA.appid, "rotated-by-admin-5f4e3d2c1b0a");
    const err = await failure(h.manager.get(OA.id, "access_token", never));
    await h.settle();
    expect(err).toBeInstanceOf(UpstreamConfigError);
    expect((err as UpstreamConfigError).errcode).toBe(40001);
    const status = toConnectError(err);
    expect(status.code).toBe(Code.FailedPrecondition);
    expect(status.rawMessage).toMatch(/errcode 40001\. To fix: check the app's AppSecret/);
    expect(h.calls()).toBe(1);
    expect(h.alerts("wechat_config_error", "firing")).toHaveLength(1);
  });
});

describe("45011 (per-minute limit)", () => {
  it("is not retried within the same minute, by the caller's fetch or by later callers", async () => {
    h = await startResilienceHarness(); // starts on a minute boundary
    const harness = h;
    harness.emulator.control.setMinuteLimit(OA.appid, TOKEN_PATH, 1);
    await harness.foreignFetch(); // someone else used this minute's one call

    const err = await failure(harness.manager.get(OA.id, "access_token", never));
    expect(err).toBeInstanceOf(QuotaExhaustedError);
    expect((err as QuotaExhaustedError).errcode).toBe(45011);
    expect(toConnectError(err).code).toBe(Code.ResourceExhausted);
    expect((err as Error).message).toContain("next minute");
    expect(harness.calls()).toBe(2); // the foreign call and one of ours: no inline retry

    // Callers keep asking for the rest of the minute: WeChat is not called again.
    let refused = 0;
    await harness.advance(59 * SECOND, {
      onStep: () =>
        harness.manager.get(OA.id, "access_token", never).then(
          () => {},
          () => {
            refused++;
          },
        ),
    });
    expect(refused).toBe(59);
    expect(harness.calls()).toBe(2);

    // The next minute, the first caller gets a token with one call.
    await harness.advance(SECOND);
    await harness.manager.get(OA.id, "access_token", never);
    expect(harness.calls()).toBe(3);
    expect(harness.successes()).toBe(2);
  });
});

describe("an errcode the broker does not know", () => {
  it("is neither retried nor counted as an outage; callers get the errcode, one alert names it", async () => {
    h = await startResilienceHarness();
    const harness = h;
    const fault = harness.emulator.control.injectFault({
      endpoint: TOKEN_PATH,
      action: { type: "errcode", errcode: 61999, errmsg: "a brand new condition rid: 1-2-3" },
    });
    for (let i = 1; i <= 4; i++) {
      const err = await failure(harness.manager.get(OA.id, "access_token", never));
      expect(err).toBeInstanceOf(UpstreamRejectedError);
      const status = toConnectError(err);
      expect(status.code).toBe(Code.Unknown);
      expect(status.rawMessage).toContain("errcode 61999");
      expect(status.rawMessage).toContain("a brand new condition");
      expect(harness.calls()).toBe(i); // one call per failure hold, no inline retries
      await harness.advance(MINUTE);
    }
    expect(harness.breakers.state(OA.id, TOKEN_PATH)).toBe("closed");
    const firing = harness.alerts("wechat_unknown_errcode", "firing");
    expect(firing).toHaveLength(1);
    expect(firing[0]?.summary).toContain("61999");
    expect(firing[0]?.details).toEqual({
      errcode: 61999,
      endpoint: TOKEN_PATH,
      kind: "access_token",
    });
    expect(harness.alerts("wechat_circuit_open", "firing")).toHaveLength(0);

    harness.emulator.control.removeFault(fault);
    await harness.manager.get(OA.id, "access_token", never);
    await harness.settle();
    expect(harness.alerts("wechat_unknown_errcode", "resolved")).toHaveLength(1);
  });
});

describe("48001 api unauthorized (e.g. no card permission)", () => {
  it("is a config error naming the permission and the app's kinds, fetched once", async () => {
    h = await startResilienceHarness();
    h.emulator.control.injectFault({
      endpoint: TICKET_PATH,
      action: { type: "errcode", errcode: 48001 },
    });
    const err = await failure(h.manager.get(OA.id, "wx_card_ticket", never));
    await h.settle();
    expect(err).toBeInstanceOf(UpstreamConfigError);
    const status = toConnectError(err);
    expect(status.code).toBe(Code.FailedPrecondition);
    expect(status.rawMessage).toContain("errcode 48001");
    expect(status.rawMessage).toContain("card permission");
    expect(status.rawMessage).toContain("`kinds`");
    expect(h.calls(TICKET_PATH)).toBe(1);
    expect(h.alerts("wechat_config_error", "firing")).toHaveLength(1);
  });
});
