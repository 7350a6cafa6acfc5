import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RedisClient } from "./connection.js";

/**
 * The one loader of the broker's Redis scripts (BullMQ-style). Every script
 * is a file `lua/<family>/<name>-<numberOfKeys>.lua` beside this module, and
 * `--- @include "x"` pulls in `lua/includes/x.lua`, so each script reaches
 * Redis as one self-contained body. The folder is found relative to this
 * module only: run from the sources it is `src/store/redis/lua/`, compiled it
 * is the copy `npm run build` puts beside the JS (scripts/copy-lua.mjs).
 * Nothing is read before the first use of a family.
 */
export const LUA_FAMILIES = ["credential", "schedule", "quota", "exchange"] as const;
export type LuaFamily = (typeof LUA_FAMILIES)[number];

export interface LuaScript {
  /** Command name: the file name without `-<numKeys>.lua`, in camelCase. */
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

/** The scripts' root folder, relative to `moduleUrl` (this module unless a test says otherwise). */
export function luaRoot(moduleUrl: string = import.meta.url): URL {
  return new URL("./lua/", moduleUrl);
}

const cache = new Map<LuaFamily, readonly LuaScript[]>();

/** One family's scripts, read once per process. */
export function luaScripts(family: LuaFamily): readonly LuaScript[] {
  let scripts = cache.get(family);
  if (!scripts) {
    scripts = readLuaScripts(new URL(`${family}/`, luaRoot()));
    cache.set(family, scripts);
  }
  return scripts;
}

/**
 * Reads every `<name>-<numKeys>.lua` in `dir`, includes inlined from
 * `includes` (by default the sibling folder `../includes/`).
 */
export function readLuaScripts(
  dir: URL,
  includes: URL = new URL("../includes/", dir),
): LuaScript[] {
  if (!existsSync(dir))
    throw new Error(
      `Redis scripts not found in ${fileURLToPath(dir)}; a compiled build gets them from ` +
        "`npm run build`, which copies the .lua files beside the JS (scripts/copy-lua.mjs)",
    );
  return readdirSync(dir)
    .filter((file) => file.endsWith(".lua"))
    .sort()
    .map((file) => {
      const m = /^([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)-(\d+)\.lua$/.exec(file);
      if (!m?.[1] || !m[2])
        throw new Error(`Redis script '${file}' is not named <name>-<numberOfKeys>.lua`);
      const lua = readFileSync(new URL(file, dir), "utf8").replace(
        /^--- @include "([a-z0-9-]+)"$/gm,
        (_, include: string) => readFileSync(new URL(`${include}.lua`, includes), "utf8"),
      );
      return {
        name: m[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
        numberOfKeys: Number(m[2]),
        lua,
      };
    });
}

const defined = new WeakMap<RedisClient, Set<LuaFamily>>();

/**
 * Registers a family's scripts on `client` with `defineCommand` (ioredis runs
 * them with EVALSHA and falls back to EVAL after a failover or SCRIPT FLUSH),
 * once per client; `required` names the commands the caller relies on, each
 * with its number of keys, so a missing or renamed file fails here.
 */
export function defineLuaScripts(
  client: RedisClient,
  family: LuaFamily,
  required: Readonly<Record<string, number>>,
): void {
  const done = defined.get(client) ?? new Set<LuaFamily>();
  if (done.has(family)) return;
  const scripts = luaScripts(family);
  for (const [name, keys] of Object.entries(required))
    if (!scripts.some((s) => s.name === name && s.numberOfKeys === keys))
      throw new Error(
        `Redis script ${name} (${keys} key${keys === 1 ? "" : "s"}) is missing from lua/${family}/`,
      );
  for (const { name, numberOfKeys, lua } of scripts)
    client.defineCommand(name, { numberOfKeys, lua });
  done.add(family);
  defined.set(client, done);
}
