import { describe, expect, it } from "vitest";
import { APPID, errcodeOf, OTHER_APPID, OTHER_SECRET, startEmulator, tokenOf } from "./harness.js";

describe("R43: fault injection", () => {
  it.each([
    [-1, "system error"],
    [45009, "reach max api daily quota limit"],
    [45011, "api minute-quota reach limit mustslower retry next minute"],
    [40164, "invalid ip"],
    [89503, "this ip needs administrator confirmation"],
    [50002, "user limited"],
  ])("an injected %i answers once, uses no quota and changes no token", async (errcode, text) => {
    const h = await startEmulator();
    const { control } = h.emulator;
    control.injectFault({
      endpoint: "/cgi-bin/token",
      times: 1,
      action: { type: "errcode", errcode },
    });
    const injected = await h.classic();
    expect(injected.status).toBe(200);
    expect(injected.body.errcode).toBe(errcode);
    expect(injected.body.errmsg).toMatch(new RegExp(`^${text}.* rid: [0-9a-f-]{26}$`));
    expect(control.liveTokens()).toEqual([]);
    expect(control.quota(APPID)["/cgi-bin/token"].used).toBe(0);
    expect(errcodeOf(await h.classic())).toBe(0);
    expect(control.quota(APPID)["/cgi-bin/token"].used).toBe(1);
    expect(control.counters()["/cgi-bin/token"]?.[APPID]).toEqual({
      calls: 2,
      successes: 1,
      errors: { [String(errcode)]: 1 },
      faults: 1,
      quotaUsed: 1,
    });
  });

  it("a custom errmsg, and `times` limits how often a fault fires", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    control.injectFault({
      endpoint: "/cgi-bin/stable_token",
      times: 2,
      action: { type: "errcode", errcode: -1, errmsg: "system busy" },
    });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(await h.stable());
    expect(codes.map(errcodeOf)).toEqual([-1, -1, 0]);
    expect(codes[0]?.body.errmsg).toMatch(/^system busy rid: /);
    expect(control.listFaults()).toEqual([]);
  });

  it("faults match by endpoint ('*' for all) and by account (parameter or token owner)", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    const mine = tokenOf(await h.classic());
    const theirs = tokenOf(await h.classic(OTHER_APPID, OTHER_SECRET));
    control.injectFault({
      endpoint: "*",
      appid: OTHER_APPID,
      action: { type: "errcode", errcode: -1 },
    });
    expect(errcodeOf(await h.classic(OTHER_APPID, OTHER_SECRET))).toBe(-1);
    expect(errcodeOf(await h.probe(theirs))).toBe(-1);
    expect(errcodeOf(await h.classic())).toBe(0);
    expect(errcodeOf(await h.probe(mine))).toBe(0);
    control.clearFaults();
    expect(errcodeOf(await h.probe(theirs))).toBe(0);
  });

  it("probability uses the injected random source", async () => {
    const rolls = [0.1, 0.9, 0.4, 0.6];
    const h = await startEmulator({ random: () => rolls.shift() ?? 1 });
    h.emulator.control.injectFault({
      endpoint: "/cgi-bin/token",
      probability: 0.5,
      action: { type: "errcode", errcode: -1 },
    });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(errcodeOf(await h.classic()));
    expect(codes).toEqual([-1, 0, -1, 0]);
  });

  it("an http fault answers that status with a text body", async () => {
    const h = await startEmulator();
    h.emulator.control.injectFault({
      endpoint: "/cgi-bin/token",
      times: 1,
      action: { type: "http", status: 502 },
    });
    const answer = await h.classic();
    expect(answer.status).toBe(502);
    expect(answer.contentType).toMatch(/^text\/plain/);
    expect(h.emulator.control.counters()["/cgi-bin/token"]?.[APPID]?.errors).toEqual({
      "http:502": 1,
    });
  });

  it("latency delays the answer in real time, then the call is served normally", async () => {
    const h = await startEmulator();
    h.emulator.control.injectFault({
      endpoint: "/cgi-bin/token",
      times: 1,
      action: { type: "latency", ms: 150 },
    });
    const started = performance.now();
    const answer = await h.classic();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(errcodeOf(answer)).toBe(0);
    expect(h.emulator.control.counters()["/cgi-bin/token"]?.[APPID]).toMatchObject({
      successes: 1,
      faults: 1,
    });
  });

  it("a hang never answers; the client gives up, and close() releases the rest", async () => {
    const h = await startEmulator();
    h.emulator.control.injectFault({ endpoint: "/cgi-bin/token", action: { type: "hang" } });
    const url = `${h.url}/cgi-bin/token?grant_type=client_credential&appid=${APPID}&secret=x`;
    await expect(fetch(url, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    const pending = fetch(url);
    const outcome = pending.then(
      () => "answered",
      () => "dropped",
    );
    await new Promise((r) => setTimeout(r, 50));
    const closing = performance.now();
    await h.emulator.close();
    expect(performance.now() - closing).toBeLessThan(1000);
    expect(await outcome).toBe("dropped");
    expect(h.emulator.control.callCount("/cgi-bin/token")).toBe(2);
  });

  it("invalid fault specs are rejected", async () => {
    const h = await startEmulator();
    const { control } = h.emulator;
    expect(() => control.injectFault({ endpoint: "", action: { type: "hang" } })).toThrow(
      /endpoint/,
    );
    expect(() =>
      control.injectFault({ endpoint: "*", probability: 0, action: { type: "hang" } }),
    ).toThrow(/probability/);
    expect(() =>
      control.injectFault({ endpoint: "*", action: { type: "http", status: 42 } }),
    ).toThrow(/status/);
  });
});
