import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { ClientContext, RedisKey, Result } from "ioredis";
import type { RedisClient } from "./connection.js";
import type { EncodedCredential } from "./credential-codec.js";

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    /** lua/cas-credential-1.lua; call it through `loadScripts(client).casCredential`. */
    casCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/restore-credential-1.lua; call it through `loadScripts(client).restoreCredential`. */
    restoreCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/discard-credential-1.lua; call it through `loadScripts(client).discardCredential`. */
    discardCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
  }
}

/**
 * Where the `.lua` files are, relative to this module's URL. Run from the
 * sources (tsx, vitest) they sit next to it in `./lua/`. `tsc` does not copy
 * them, and the build keeps the source tree's shape under `dist/`
 * (`rootDir: "."`), so compiled to `dist/src/store/redis/scripts.js` this
 * module reads them from the sources at `<package>/src/store/redis/lua/`.
 * The first folder that exists wins; nothing is copied at build time.
 */
export const LUA_DIRECTORY_CANDIDATES = ["./lua/", "../../../../src/store/redis/lua/"] as const;

export function findLuaDirectory(
  moduleUrl: string = import.meta.url,
  exists: (url: URL) => boolean = existsSync,
): URL {
  const candidates = LUA_DIRECTORY_CANDIDATES.map((relative) => new URL(relative, moduleUrl));
  const found = candidates.find(exists);
  if (!found)
    throw new Error(
      `Redis scripts not found; looked in ${candidates.map((u) => u.pathname).join(" and ")}`,
    );
  return found;
}

export interface LuaScript {
  /** Command name: the file name without `-<numKeys>.lua`, in camelCase. */
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

/**
 * Reads every `<name>-<numKeys>.lua` in `dir`. A line `--- @include "x"`
 * is replaced by `includes/x.lua` (shared helpers, BullMQ-style), so each
 * script reaches Redis as one self-contained body.
 */
export function readLuaScripts(dir: URL = findLuaDirectory()): LuaScript[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".lua"))
    .sort()
    .map((file) => {
      const m = /^([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)-(\d+)\.lua$/.exec(file);
      if (!m?.[1] || !m[2])
        throw new Error(`Redis script '${file}' is not named <name>-<numberOfKeys>.lua`);
      const lua = readFileSync(new URL(file, dir), "utf8").replace(
        /^--- @include "([a-z0-9-]+)"$/gm,
        (_, include: string) => readFileSync(new URL(`includes/${include}.lua`, dir), "utf8"),
      );
      return {
        name: m[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
        numberOfKeys: Number(m[2]),
        lua,
      };
    });
}

/** Outcome of a write script, with the hash as it is after the call. */
export interface WriteReply {
  readonly status: "written" | "version" | "fence";
  /** HGETALL's flat list; empty when nothing is stored. */
  readonly fields: readonly unknown[];
}

/** What every write script needs besides the credential. */
interface WriteTarget {
  /** RedisKeys.updates */
  readonly channel: string;
  /** keyId(key), named in the published message. */
  readonly id: string;
  readonly credential: EncodedCredential;
  /** How long Redis keeps the hash from now, in ms (PEXPIRE). */
  readonly keepMs: number;
}

export interface CasArgs extends WriteTarget {
  readonly expectedVersion: number;
  readonly fence: number;
}

export interface RestoreArgs extends WriteTarget {
  readonly expectedVersion: number;
}

/** Typed calls of the scripts, registered on one client. */
export interface TokenScripts {
  /** cas-credential-1.lua: fence check, version check, write, publish. */
  casCredential(credentialKey: string, args: CasArgs): Promise<WriteReply>;
  /** restore-credential-1.lua: put a whole record over the version read, publish. */
  restoreCredential(credentialKey: string, args: RestoreArgs): Promise<WriteReply>;
  /** discard-credential-1.lua: delete a refused record unless it changed; true if deleted. */
  discardCredential(credentialKey: string, value: string, version: string): Promise<boolean>;
}

const REQUIRED = ["casCredential", "restoreCredential", "discardCredential"] as const;

/**
 * Registers every script on `client` with `defineCommand` (ioredis runs them
 * with EVALSHA and falls back to EVAL after a failover or SCRIPT FLUSH) and
 * returns typed wrappers. Registering again on the same client is harmless.
 */
export function loadScripts(client: RedisClient, scripts = readLuaScripts()): TokenScripts {
  for (const name of REQUIRED)
    if (!scripts.some((s) => s.name === name && s.numberOfKeys === 1))
      throw new Error(`Redis script ${name} (one key) is missing`);
  for (const { name, numberOfKeys, lua } of scripts)
    client.defineCommand(name, { numberOfKeys, lua });
  return {
    async casCredential(credentialKey, a) {
      const c = a.credential;
      return writeReply(
        "cas-credential-1.lua",
        await client.casCredential(
          credentialKey,
          a.channel,
          a.id,
          String(a.expectedVersion),
          String(a.fence),
          c.value,
          c.version,
          c.fetchedAt,
          c.expiresAt,
          c.previousValidUntil,
          String(a.keepMs),
        ),
      );
    },
    async restoreCredential(credentialKey, a) {
      const c = a.credential;
      return writeReply(
        "restore-credential-1.lua",
        await client.restoreCredential(
          credentialKey,
          a.channel,
          a.id,
          String(a.expectedVersion),
          c.value,
          c.version,
          c.fetchedAt,
          c.expiresAt,
          c.previousValidUntil,
          String(a.keepMs),
        ),
      );
    },
    async discardCredential(credentialKey, value, version) {
      return (await client.discardCredential(credentialKey, value, version)) === 1;
    },
  };
}

const STATUS = { "1": "written", "0": "version", "-1": "fence" } as const;

function writeReply(script: string, reply: unknown): WriteReply {
  const [code, fields] = Array.isArray(reply) ? reply : [];
  const status = STATUS[String(code) as keyof typeof STATUS];
  if (!status || !Array.isArray(fields)) throw new Error(`${script} returned an unexpected reply`);
  return { status, fields };
}
