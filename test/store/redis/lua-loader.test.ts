import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import {
  LUA_FAMILIES,
  luaRoot,
  luaScripts,
  readLuaScripts,
} from "../../../src/store/redis/lua-loader.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "broker-lua-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the Lua script loader", () => {
  it("reads each family beside its own module, named <name>-<numKeys>.lua, headed, includes inlined", () => {
    expect(luaRoot().href).toBe(pathToFileURL(join(root, "src/store/redis/lua/")).href);
    const all = LUA_FAMILIES.map((family) => [
      family,
      luaScripts(family).map((s) => [s.name, s.numberOfKeys]),
    ]);
    expect(all).toEqual([
      [
        "credential",
        [
          ["casCredential", 1],
          ["deleteCredential", 1],
          ["discardCredential", 1],
          ["restoreCredential", 1],
        ],
      ],
      [
        "schedule",
        [
          ["claimDue", 2],
          ["releaseClaim", 1],
        ],
      ],
      [
        "quota",
        [
          ["blockQuota", 1],
          ["takeQuota", 3],
        ],
      ],
      ["exchange", [["releaseExchange", 1]]],
    ]);
    for (const s of LUA_FAMILIES.flatMap((f) => luaScripts(f))) {
      expect(s.lua.startsWith("--[[")).toBe(true);
      expect(s.lua).toMatch(/Input:[\s\S]*KEYS\[1\][\s\S]*Output:/);
      expect(s.lua).not.toContain("@include");
      // Time always comes from the caller.
      expect(s.lua).not.toMatch(/redis\.call\(\s*'TIME'/i);
    }
    // Every credential write is announced; the discard of a refused record writes nothing.
    for (const s of luaScripts("credential"))
      if (s.name !== "discardCredential")
        expect(s.lua).toContain("local function publishCredential");
  });

  it("refuses a file that does not say how many keys it takes", () => {
    const dir = join(scratch, "misnamed");
    mkdirSync(dir);
    writeFileSync(join(dir, "no-key-count.lua"), "return 1");
    expect(() => readLuaScripts(pathToFileURL(`${dir}/`))).toThrow(
      /'no-key-count.lua' is not named <name>-<numberOfKeys>.lua/,
    );
  });

  it("runs compiled from the build's copy of the scripts, never from src/", () => {
    // The loader as tsc emits it, at its place in the build (rootDir ".").
    const out = join(scratch, "dist");
    const compiled = join(out, "src/store/redis/lua-loader.js");
    mkdirSync(join(out, "src/store/redis"), { recursive: true });
    const source = readFileSync(join(root, "src/store/redis/lua-loader.ts"), "utf8");
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2023,
        verbatimModuleSyntax: true,
      },
    });
    writeFileSync(compiled, outputText);
    const load = () =>
      execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const m = await import(${JSON.stringify(pathToFileURL(compiled).href)});
           console.log(JSON.stringify({ root: m.luaRoot().href,
             scripts: m.LUA_FAMILIES.map((f) => m.luaScripts(f)) }));`,
        ],
        { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
      );

    // Before the copy there is nothing to read, and the error names the build step.
    expect(load).toThrow(
      /Redis scripts not found in .*dist\/src\/store\/redis\/lua\/credential.*copy-lua/,
    );

    execFileSync(process.execPath, [join(root, "scripts/copy-lua.mjs"), out], { stdio: "pipe" });
    const fromBuild = JSON.parse(load());
    expect(fromBuild.root).toBe(pathToFileURL(join(out, "src/store/redis/lua/")).href);
    expect(fromBuild.scripts).toEqual(LUA_FAMILIES.map((f) => luaScripts(f)));
  });

  it("copies every .lua file, includes too, and drops copies whose source is gone", () => {
    const out = join(scratch, "copy");
    const stale = join(out, "src/store/redis/lua/credential/renamed-1.lua");
    mkdirSync(join(out, "src/store/redis/lua/credential"), { recursive: true });
    writeFileSync(stale, "return 0");
    execFileSync(process.execPath, [join(root, "scripts/copy-lua.mjs"), out], { stdio: "pipe" });
    const list = (dir: string) =>
      readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((file) => file.endsWith(".lua"))
        .sort();
    const copied = list(join(out, "src"));
    expect(copied).toEqual(list(join(root, "src")));
    expect(copied).toContain("store/redis/lua/includes/publish-credential.lua");
    expect(copied).not.toContain("store/redis/lua/credential/renamed-1.lua");
  });
});
