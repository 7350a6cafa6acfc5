import { existsSync } from "node:fs";
import type { RedisClient } from "./connection.js";
import { type LuaScript, readLuaScripts } from "./scripts.js";

/**
 * The Lua scripts of the refresh schedule, kept as files in
 * `lua-coordination/` and named `<name>-<numberOfKeys>.lua` (read by the
 * token store's `readLuaScripts`). Each is registered on a client with
 * `defineCommand` (EVALSHA, falling back to EVAL once after a Redis restart)
 * and exposed as a typed function here.
 */
export interface CoordinationScripts {
  /** claim-due-2.lua: ids due at `now` and not claimed, now claimed until now + claimTtlMs. */
  claimDue(
    due: string,
    claims: string,
    now: number,
    claimTtlMs: number,
    limit: number,
  ): Promise<string[]>;
  /** release-claim-1.lua: 1 if the claim of `id` with expiry `claimedUntil` was removed. */
  releaseClaim(claims: string, id: string, claimedUntil: number): Promise<number>;
}

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** The scripts on `client` (registered on first use of each client). */
export function coordinationScripts(client: RedisClient): CoordinationScripts {
  const call = (name: string): ScriptCall => {
    if (!registered.has(client)) {
      for (const s of loadScripts()) {
        client.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
      }
      registered.add(client);
    }
    const fn = (client as unknown as Record<string, ScriptCall | undefined>)[name];
    if (!fn) throw new Error(`no Lua script '${name}' in lua-coordination/`);
    return fn.bind(client);
  };
  return {
    async claimDue(due, claims, now, claimTtlMs, limit) {
      const reply = await call("claimDue")(due, claims, now, claimTtlMs, limit);
      if (!Array.isArray(reply)) throw new Error(`claim-due-2.lua returned ${typeof reply}`);
      return reply.map(String);
    },
    async releaseClaim(claims, id, claimedUntil) {
      return Number(await call("releaseClaim")(claims, id, claimedUntil));
    },
  };
}

const registered = new WeakSet<RedisClient>();
let cache: LuaScript[] | undefined;

function loadScripts(): LuaScript[] {
  cache ??= readLuaScripts(scriptDir());
  return cache;
}

/**
 * The scripts sit next to this module in the sources. `tsc` does not copy
 * them into `dist/`, so the compiled module reads them from the source tree
 * (as `scripts.ts` does for the token store's `lua/`).
 */
function scriptDir(): URL {
  const candidates = ["./lua-coordination/", "../../../../src/store/redis/lua-coordination/"].map(
    (relative) => new URL(relative, import.meta.url),
  );
  const found = candidates.find((u) => existsSync(u));
  if (!found) {
    throw new Error(
      `coordination scripts not found; looked in ${candidates.map((u) => u.pathname).join(" and ")}`,
    );
  }
  return found;
}
