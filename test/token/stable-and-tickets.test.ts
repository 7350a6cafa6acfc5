import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnknownAppError } from "../../src/shared/errors.js";
import {
  eventually,
  never,
  OA,
  startTokenHarness,
  type TokenHarness,
} from "../helpers/token-harness.js";

const STABLE = "/cgi-bin/stable_token";
const TICKET = "/cgi-bin/ticket/getticket";
const TOKEN = "/cgi-bin/token";

describe("stable_token apps", () => {
  let h: TokenHarness;
  beforeEach(async () => {
    h = await startTokenHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("refresh inside WeChat's last-5-minutes window, so each scheduled call rotates (no wasted calls)", async () => {
    const first = await h.manager.get("st", "access_token", never);
    const due = h.manager.nextRefreshAt("st", "access_token") ?? 0;
    expect(first.expiresAt - due).toBeGreaterThan(0);
    expect(first.expiresAt - due).toBeLessThan(300_000);
    let last = first;
    for (let rotation = 1; rotation <= 5; rotation++) {
      await h.clock.advance((h.manager.nextRefreshAt("st", "access_token") ?? 0) - h.clock.now());
      await eventually(() => h.calls(STABLE) === rotation + 1, `stable rotation ${rotation}`);
      await eventually(
        () => (h.manager.nextRefreshAt("st", "access_token") ?? 0) > h.clock.now(),
        "replanned",
      );
      const now = await h.manager.get("st", "access_token", never);
      expect(now.version).toBe(rotation + 1);
      expect(now.value).not.toBe(last.value);
      expect(h.emulator.control.checkToken(now.value).valid).toBe(true);
      last = now;
    }
    expect(h.calls(TOKEN)).toBe(0);
  });
});

describe("JS-SDK and card tickets", () => {
  let h: TokenHarness;
  beforeEach(async () => {
    h = await startTokenHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("fetches a ticket with the cached access token, once for many callers, per ticket type", async () => {
    const tickets = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        h.manager.get("oa", i % 2 ? "jsapi_ticket" : "wx_card_ticket", never),
      ),
    );
    expect(h.calls(TOKEN)).toBe(1);
    expect(h.calls(TICKET)).toBe(2);
    expect(new Set(tickets.map((t) => t.value)).size).toBe(2);
  });

  it("keeps the ticket when the access token rotates", async () => {
    const ticket = await h.manager.get("oa", "jsapi_ticket", never);
    const token = await h.manager.get("oa", "access_token", never);
    await h.manager.invalidate("oa", "access_token", token.value, 40001, never);
    expect((await h.manager.get("oa", "jsapi_ticket", never)).value).toBe(ticket.value);
    expect(h.calls(TICKET)).toBe(1);
  });

  it("a 40001 on the ticket fetch refreshes the access token (compare-and-refresh) and retries once", async () => {
    const ours = await h.manager.get("oa", "access_token", never);
    for (let i = 0; i < 2; i++) {
      await fetch(
        `${h.emulatorUrl}/cgi-bin/token?grant_type=client_credential&appid=${OA.appid}&secret=${OA.secret}`,
      );
    }
    const ticket = await h.manager.get("oa", "jsapi_ticket", never);
    expect(ticket.value.length).toBeGreaterThan(0);
    expect(h.calls(TICKET)).toBe(2);
    const token = await h.manager.get("oa", "access_token", never);
    expect(token.version).toBe(2);
    expect(token.value).not.toBe(ours.value);
    expect(h.emulator.control.checkToken(token.value).valid).toBe(true);
  });

  it("re-asks for a ticket only when it runs out, since WeChat re-issues the same one until then", async () => {
    const first = await h.manager.get("oa", "jsapi_ticket", never);
    await h.clock.advance((h.manager.nextRefreshAt("oa", "jsapi_ticket") ?? 0) - h.clock.now());
    await eventually(() => h.calls(TICKET) === 2, "proactive ticket attempt");
    await eventually(
      () => h.manager.nextRefreshAt("oa", "jsapi_ticket") === first.expiresAt - 1000,
      "wait for expiry",
    );
    expect((await h.manager.get("oa", "jsapi_ticket", never)).value).toBe(first.value);
    await h.clock.advance(first.expiresAt - 1000 - h.clock.now());
    await eventually(() => h.calls(TICKET) >= 3, "attempt at the end of the ticket's life");
    await h.clock.advance(1000);
    await eventually(() => h.calls(TICKET) === 4, "attempt after expiry");
    const second = await h.manager.get("oa", "jsapi_ticket", never);
    expect(second.value).not.toBe(first.value);
    expect(second.version).toBe(2);
  });

  it("names an unknown app in the error", async () => {
    const err = await h.manager.get("nope", "jsapi_ticket", never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownAppError);
    expect((err as Error).message).toMatch(/app 'nope' is not configured on this broker/);
  });
});
