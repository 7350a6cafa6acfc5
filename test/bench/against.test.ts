import { describe, expect, it } from "vitest";
import { median, missingDependencies, parseRows } from "../../bench/against.js";

describe("bench:against", () => {
  it("reads each metric's value and unit from a section's markdown table", () => {
    const rows = parseRows(
      [
        "| metric | value | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        "| WatchToken fan-out p99 (10,000 streams) | 411.6 ms | 206.1 ms | 2.00× | ≤ 100 ms | **no** |",
        "| Memory per idle stream | 13,260 B | 5,400 B | 2.46× | — | — |",
        "| p99 across minus one | -40.9 ms | — | — | ≤ 50 ms | yes |",
        "- a note | with a pipe",
      ].join("\n"),
    );
    expect([...rows.keys()]).toEqual([
      "WatchToken fan-out p99 (10,000 streams)",
      "Memory per idle stream",
      "p99 across minus one",
    ]);
    expect(rows.get("Memory per idle stream")).toEqual({
      value: 13_260,
      unit: "B",
      baseline: 5_400,
    });
    expect(rows.get("p99 across minus one")).toEqual({ value: -40.9, unit: "ms" });
  });

  it("takes the median of the alternating runs", () => {
    expect(median([464.3, 446.2, 444.1])).toBe(446.2);
    expect(median([1, 4, 2, 3])).toBe(2.5);
  });

  it("refuses a revision needing a dependency this tree lacks or pins differently", () => {
    const now = {
      dependencies: { zod: "4.6.7", pino: "9.0.0" },
      devDependencies: { vitest: "3.2.0" },
    };
    expect(
      missingDependencies(
        { dependencies: { pino: "9.0.0" }, devDependencies: { vitest: "3.2.0" } },
        now,
      ),
    ).toEqual([]);
    expect(missingDependencies({ dependencies: { pino: "8.1.0", left: "1.0.0" } }, now)).toEqual([
      "pino@8.1.0",
      "left@1.0.0",
    ]);
  });
});
