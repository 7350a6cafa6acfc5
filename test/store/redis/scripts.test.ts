import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { findLuaDirectory, readLuaScripts } from "../../../src/store/redis/scripts.js";

const root = new URL("../../../", import.meta.url);
const sourceDir = new URL("src/store/redis/lua/", root);

describe("Lua scripts on disk", () => {
  it("are found next to the module when run from the sources", () => {
    const fromSources = new URL("src/store/redis/scripts.ts", root).href;
    expect(findLuaDirectory(fromSources).href).toBe(sourceDir.href);
  });

  it("are found in the source tree when run compiled from dist/ (tsc copies no .lua files)", () => {
    const compiled = new URL("dist/src/store/redis/scripts.js", root).href;
    const notInDist = (u: URL) => !u.pathname.includes("/dist/") && existsSync(u);
    expect(findLuaDirectory(compiled, notInDist).href).toBe(sourceDir.href);
  });

  it("name the folders it looked in when they are missing", () => {
    expect(() => findLuaDirectory("file:///nowhere/a/b/c/d/scripts.js")).toThrow(
      /not found; looked in \/nowhere\/a\/b\/c\/d\/lua\/ and \/nowhere\/src\/store\/redis\/lua\//,
    );
  });

  it("are each named <name>-<numKeys>.lua, open with an Input/Output header, and have includes inlined", () => {
    const scripts = readLuaScripts();
    expect(scripts.map((s) => [s.name, s.numberOfKeys])).toEqual([
      ["casCredential", 1],
      ["discardCredential", 1],
      ["restoreCredential", 1],
    ]);
    for (const s of scripts) {
      expect(s.lua.startsWith("--[[")).toBe(true);
      expect(s.lua).toMatch(/Input:[\s\S]*KEYS\[1\][\s\S]*Output:/);
      expect(s.lua).not.toContain("@include");
      // Every write is announced; the discard of a refused record writes nothing.
      if (s.name !== "discardCredential")
        expect(s.lua).toContain("local function publishCredential");
      expect(s.lua).not.toMatch(/redis\.call\(\s*'TIME'/i);
    }
  });

  it("refuses a file that does not say how many keys it takes", () => {
    const dir = mkdtempSync(join(tmpdir(), "broker-lua-"));
    try {
      writeFileSync(join(dir, "no-key-count.lua"), "return 1");
      expect(() => readLuaScripts(pathToFileURL(`${dir}/`))).toThrow(
        /'no-key-count.lua' is not named <name>-<numberOfKeys>.lua/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
