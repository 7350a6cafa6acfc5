import { afterEach, describe, expect, it } from "vitest";
import {
  CircuitOpenError,
  QuotaRefusedError,
  ReportShareUsedError,
  UpstreamError,
} from "../../src/core/upstream-error.js";
import { wechatErrcodes } from "../../src/credentials/wechat/errcodes.js";
import { silentLogger } from "../../src/shared/logger.js";
import {
  type BreakerState,
  countsAsFault,
  retryableInline,
  UpstreamBreakers,
} from "../../src/upstream/upstream-breakers.js";
import { FakeClock } from "../helpers/fake-clock.js";

const EP = "/cgi-bin/token";
/** An errcode answer as the official-account client reports it: read by that family's table. */
const answered = (errcode: number, errmsg: string) =>
  new UpstreamError(
    EP,
    { kind: "errcode", errcode, errmsg },
    { category: wechatErrcodes.classify(errcode, EP), remedy: wechatErrcodes.remedy(errcode, EP) },
  );
const busy = () => Promise.reject(answered(-1, "system error"));
const http502 = () => Promise.reject(new UpstreamError(EP, { kind: "http", status: 502 }));
const badSecret = () => Promise.reject(answered(40125, "invalid appsecret"));
const ok = () => Promise.resolve("token");

describe("which failures count as WeChat's faults (by their failure kind, not their text)", () => {
  it.each([
    ["-1 system busy", answered(-1, "busy"), true, true],
    ["HTTP 502", new UpstreamError(EP, { kind: "http", status: 502 }), true, true],
    ["a timeout", new UpstreamError(EP, { kind: "timeout", afterMs: 5000 }), true, true],
    [
      "a refused connection",
      new UpstreamError(EP, { kind: "network", code: "ECONNREFUSED" }),
      true,
      true,
    ],
    [
      "a body that is not JSON",
      new UpstreamError(EP, { kind: "malformed", problem: "is not JSON" }),
      true,
      true,
    ],
    ["45011 per-minute limit", answered(45011, "minute"), true, false],
    ["45009 daily quota", answered(45009, "day"), false, false],
    ["40125 wrong secret", answered(40125, "secret"), false, false],
    ["an errcode the broker does not know", answered(99999, "?"), false, false],
    ["an open circuit", new CircuitOpenError(EP, 30_000), false, false],
    [
      "the broker's budget",
      new QuotaRefusedError(EP, "budget", "not called: budget used"),
      false,
      false,
    ],
    ["the reports' share", new ReportShareUsedError(EP, "not called: share used"), false, false],
    ["something that is not an UpstreamError", new TypeError("x"), false, false],
  ])("%s: fault %s, inline retry %s", (_name, err, fault, retry) => {
    expect(countsAsFault(err)).toBe(fault);
    expect(retryableInline(err)).toBe(retry);
  });

  it("gives each error a stable code and keeps the text for people", () => {
    expect(answered(40125, "invalid appsecret")).toMatchObject({
      code: "UPSTREAM_FAILED",
      errcode: 40125,
      category: "config",
      detail: "invalid appsecret",
      message: "WeChat /cgi-bin/token returned errcode 40125: invalid appsecret",
    });
    expect(new UpstreamError(EP, { kind: "http", status: 502 })).toMatchObject({
      errcode: undefined,
      category: "retryable",
      message: "WeChat /cgi-bin/token failed: HTTP 502",
    });
    expect(new CircuitOpenError(EP, 0).code).toBe("UPSTREAM_CIRCUIT_OPEN");
    const share = new ReportShareUsedError(EP, "not called");
    expect(share).toBeInstanceOf(QuotaRefusedError);
    expect(share).toMatchObject({ code: "UPSTREAM_REPORT_SHARE_USED", category: "quota" });
  });
});

describe("UpstreamBreakers (opossum on an injected clock)", () => {
  let b: UpstreamBreakers;
  afterEach(() => b.close());

  function make(clock: FakeClock, transitions: BreakerState[] = []) {
    b = new UpstreamBreakers({
      clock,
      logger: silentLogger(),
      policy: { errorThresholdPercent: 50, volumeThreshold: 3, resetMs: 30_000, windowMs: 60_000 },
      onStateChange: (_app, _ep, s) => transitions.push(s),
    });
    return b;
  }

  it("opens after 3 WeChat faults and then rejects without calling WeChat", async () => {
    const clock = new FakeClock(0);
    make(clock);
    for (const fault of [busy, http502, busy])
      await expect(b.run("a", EP, fault)).rejects.toThrow(UpstreamError);
    expect(b.state("a", EP)).toBe("open");
    let called = false;
    const err = await b
      .run("a", EP, async () => {
        called = true;
        return "x";
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAt).toBe(30_000);
    expect(b.state("other-app", EP)).toBe("closed");
  });

  it("lets one probe through after the reset time and closes on its success", async () => {
    const clock = new FakeClock(0);
    const transitions: BreakerState[] = [];
    make(clock, transitions);
    for (let i = 0; i < 3; i++) await b.run("a", EP, busy).catch(() => {});
    await clock.advance(29_999);
    await expect(b.run("a", EP, ok)).rejects.toThrow(CircuitOpenError);
    await clock.advance(1);
    expect(b.state("a", EP)).toBe("half_open");
    expect(await b.run("a", EP, ok)).toBe("token");
    expect(b.state("a", EP)).toBe("closed");
    expect(transitions).toEqual(["open", "half_open", "closed"]);
  });

  it("reopens when the probe fails, and probes again one reset later", async () => {
    const clock = new FakeClock(0);
    const transitions: BreakerState[] = [];
    make(clock, transitions);
    for (let i = 0; i < 3; i++) await b.run("a", EP, busy).catch(() => {});
    await clock.advance(30_000);
    await expect(b.run("a", EP, busy)).rejects.toThrow("system error");
    expect(b.state("a", EP)).toBe("open");
    await clock.advance(30_000);
    expect(await b.run("a", EP, ok)).toBe("token");
    expect(transitions).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("never opens on configuration errors: they are verdicts, not outages", async () => {
    const clock = new FakeClock(0);
    make(clock);
    for (let i = 0; i < 10; i++) await expect(b.run("a", EP, badSecret)).rejects.toThrow("40125");
    expect(b.state("a", EP)).toBe("closed");
  });

  it("forgets faults older than the window", async () => {
    const clock = new FakeClock(0);
    make(clock);
    await b.run("a", EP, busy).catch(() => {});
    await b.run("a", EP, busy).catch(() => {});
    await clock.advance(61_000);
    await b.run("a", EP, ok);
    await b.run("a", EP, busy).catch(() => {});
    expect(b.state("a", EP)).toBe("closed");
  });
});
