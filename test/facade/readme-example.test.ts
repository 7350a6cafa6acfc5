import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { logSink } from "../helpers/log-sink.js";
import { type FacadeBroker, KEYS, SHOP, startFacadeBroker } from "./helpers.js";

const run = promisify(execFile);

/**
 * README, "Adopting the broker with your existing SDK": the runnable
 * example (examples/facade-co-wechat-api.mjs) against a broker, with the
 * app's AppSecret and with a client's API key in its place.
 */

let b: FacadeBroker;
beforeAll(async () => {
  b = await startFacadeBroker({ logger: logSink().logger });
});
afterAll(async () => {
  await b?.close();
});

describe("examples/facade-co-wechat-api.mjs", () => {
  it.each([
    ["the AppSecret", SHOP.secret],
    ["a client's API key", KEYS.orders],
  ])("gets the broker's token and ticket with %s", async (_what, secret) => {
    const { stdout } = await run(process.execPath, ["examples/facade-co-wechat-api.mjs"], {
      env: { ...process.env, BROKER_URL: b.url, WECHAT_APPID: SHOP.appid, WECHAT_SECRET: secret },
    });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    const token = await b.tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
    const ticket = await b.tokens.getToken({ appId: "shop", kind: TokenKind.JSAPI_TICKET });
    expect(out.token).toBe(token.token?.fingerprint);
    expect(
      Math.abs(Number(out.tokenSecondsLeft) - Number(token.token?.expiresIn)),
    ).toBeLessThanOrEqual(2);
    expect(out.ticket).toBe(ticket.token?.fingerprint);
    expect(out).toMatchObject({ jsConfigSigned: true });
    expect(Number(out.callbackIps)).toBeGreaterThan(0);
    expect(stdout).not.toContain(String(token.token?.value));
    expect(b.calls("/cgi-bin/token", SHOP.appid)).toBe(1);
  });

  it("refuses to run without its settings", async () => {
    const err = await run(process.execPath, ["examples/facade-co-wechat-api.mjs"], {
      env: { PATH: process.env.PATH ?? "" },
    }).catch((e: { code?: number; stderr?: string }) => e);
    expect(err).toMatchObject({ code: 2 });
  });
});
