import { describe, expect, it } from "vitest";
import {
  BudgetTable,
  DEFAULT_BUDGETS,
  DEFAULT_GROUP_BUDGETS,
} from "../../src/quota/quota-ledger.js";

describe("BudgetTable", () => {
  it("defaults below WeChat's limits: 1800 token, 400000 stable_token, 1000 getticket, 20 force, 3 clears", () => {
    const t = new BudgetTable();
    expect(DEFAULT_BUDGETS).toEqual({
      "/cgi-bin/token": 1800,
      "/cgi-bin/stable_token": 400_000,
      "/cgi-bin/ticket/getticket": 1000,
      // Web OAuth: per-minute limits only, no daily quota.
      "/sns/oauth2/access_token": null,
      "/sns/oauth2/refresh_token": null,
      // WeCom: per hour, not per China day; per app (and per corp, DEFAULT_GROUP_BUDGETS).
      "/cgi-bin/gettoken": 60,
      "/cgi-bin/get_jsapi_ticket": 80,
      "/cgi-bin/ticket/get": 80,
      force_refresh: 20,
      clear_quota: 3,
    });
    expect(t.budget("any", "/cgi-bin/token")).toBe(1800);
    // Reports may use 80 % of a WeChat endpoint's budget; operators' calls are not reports.
    expect(t.effective("any", "/cgi-bin/token", "report")).toBe(1440);
    expect(t.effective("any", "/cgi-bin/token")).toBe(1800);
    expect(t.effective("any", "force_refresh", "report")).toBe(20);
    expect(() => new BudgetTable({ scheduledReserve: 1 })).toThrow(/scheduledReserve/);
  });

  it("WeCom's corp budgets: below 400 tickets an hour (corp and app tickets together) and the 2000 failed gettoken calls that block a corp", () => {
    expect(DEFAULT_GROUP_BUDGETS).toEqual({
      "/cgi-bin/gettoken": 1000,
      "/cgi-bin/get_jsapi_ticket": 320,
      "/cgi-bin/ticket/get": 320,
    });
    const t = new BudgetTable({
      groupDefaults: { "/cgi-bin/gettoken": 500 },
      groups: { ww1: { "/cgi-bin/gettoken": null } },
    });
    expect(t.groupBudget("ww2", "/cgi-bin/gettoken")).toBe(500);
    expect(t.groupBudget("ww1", "/cgi-bin/gettoken")).toBeNull();
    expect(t.groupBudget("ww1", "/cgi-bin/ticket/get")).toBe(320);
    expect(t.effectiveForGroup("ww2", "/cgi-bin/gettoken", "report")).toBe(400);
    // Only windowed endpoints have group budgets.
    expect(() => new BudgetTable({ groupDefaults: { "/cgi-bin/token": 5 } })).toThrow(
      /groupDefaults: '\/cgi-bin\/token' has no group budget/,
    );
  });

  it("resolves per app, then configured default, then built-in; undefined means not set", () => {
    const t = new BudgetTable({
      defaults: { "/cgi-bin/token": 1500, "/cgi-bin/ticket/getticket": null },
      apps: { mini: { "/cgi-bin/token": 9000, force_refresh: undefined } },
    });
    expect(t.budget("mini", "/cgi-bin/token")).toBe(9000);
    expect(t.budget("mini", "force_refresh")).toBe(20);
    expect(t.budget("oa", "/cgi-bin/token")).toBe(1500);
    expect(t.budget("oa", "/cgi-bin/ticket/getticket")).toBeNull();
    expect(t.budget("oa", "/cgi-bin/stable_token")).toBe(400_000);
  });

  it.each([
    [{ defaults: { "/cgi-bin/token": -1 } }, /whole number/],
    [{ defaults: { "/cgi-bin/token": 1.5 } }, /whole number/],
    [{ apps: { a: { "/cgi-bin/token": Number.POSITIVE_INFINITY } } }, /apps\.a/],
    [{ defaults: { "/cgi-bin/getcallbackip": 10 } }, /unknown endpoint/],
  ])("rejects %j", (budgets, message) => {
    expect(() => new BudgetTable(budgets as never)).toThrow(message);
  });
});
