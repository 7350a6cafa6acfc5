import { describe, expect, it } from "vitest";
import { chinaDate, chinaDayStart, nextChinaDay } from "../../src/quota/china-day.js";

/** A China day is [00:00, 24:00) UTC+8, i.e. it starts at 16:00 UTC the day before. */
describe("China day", () => {
  const utc = (d: number, h: number, m = 0, s = 0, ms = 0) => Date.UTC(2026, 0, d, h, m, s, ms);

  it.each([
    ["15:59:59.999 UTC is the end of the previous China day", utc(1, 15, 59, 59, 999), utc(0, 16)],
    ["16:00:00.000 UTC starts a China day", utc(1, 16), utc(1, 16)],
    ["16:00:00.001 UTC is inside it", utc(1, 16, 0, 0, 1), utc(1, 16)],
    ["00:00 UTC is 08:00 in China, same China day", utc(2, 0), utc(1, 16)],
  ])("%s", (_what, now, start) => {
    expect(chinaDayStart(now)).toBe(start);
    expect(nextChinaDay(now)).toBe(start + 86_400_000);
  });

  it("names the China date, which turns at 16:00 UTC", () => {
    expect(chinaDate(utc(1, 15, 59, 59, 999))).toBe("2026-01-01");
    expect(chinaDate(utc(1, 16))).toBe("2026-01-02");
  });

  it("has no daylight saving: every day is 24 h, across a year and at the epoch", () => {
    expect(chinaDayStart(0)).toBe(-8 * 3_600_000);
    for (let d = 0; d < 366; d++) {
      const start = utc(1 + d, 16);
      expect(nextChinaDay(start) - chinaDayStart(start)).toBe(86_400_000);
      expect(chinaDayStart(start - 1)).toBe(start - 86_400_000);
    }
  });
});
