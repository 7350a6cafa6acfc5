import type { ClientContext, RedisKey, Result } from "ioredis";
import type { RedisClient } from "./connection.js";
import { defineLuaScripts } from "./lua-loader.js";

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    /** lua/schedule/claim-due-2.lua; call it through `coordinationScripts(client).claimDue`. */
    claimDue(due: RedisKey, claims: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/schedule/release-claim-1.lua; call it through `coordinationScripts(client).releaseClaim`. */
    releaseClaim(claims: RedisKey, ...argv: string[]): Result<unknown, Context>;
  }
}

/**
 * The Lua scripts of the refresh schedule (lua/schedule/, read by the one
 * loader), exposed as typed functions.
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

/** The scripts on `client` (registered on first use of each client). */
export function coordinationScripts(client: RedisClient): CoordinationScripts {
  const define = () => defineLuaScripts(client, "schedule", { claimDue: 2, releaseClaim: 1 });
  return {
    async claimDue(due, claims, now, claimTtlMs, limit) {
      define();
      const reply = await client.claimDue(
        due,
        claims,
        String(now),
        String(claimTtlMs),
        String(limit),
      );
      if (!Array.isArray(reply)) throw new Error(`claim-due-2.lua returned ${typeof reply}`);
      return reply.map(String);
    },
    async releaseClaim(claims, id, claimedUntil) {
      define();
      return Number(await client.releaseClaim(claims, id, String(claimedUntil)));
    },
  };
}
