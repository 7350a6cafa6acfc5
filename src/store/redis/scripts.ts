import type { ClientContext, RedisKey, Result } from "ioredis";
import type { RedisClient } from "./connection.js";
import type { EncodedCredential } from "./credential-codec.js";
import { defineLuaScripts } from "./lua-loader.js";

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    /** lua/credential/cas-credential-1.lua; call it through `loadScripts(client).casCredential`. */
    casCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/credential/restore-credential-1.lua; call it through `loadScripts(client).restoreCredential`. */
    restoreCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/credential/discard-credential-1.lua; call it through `loadScripts(client).discardCredential`. */
    discardCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
    /** lua/credential/delete-credential-1.lua; call it through `loadScripts(client).deleteCredential`. */
    deleteCredential(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
  }
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

export interface DeleteArgs {
  /** RedisKeys.updates */
  readonly channel: string;
  /** keyId(key), named in the published message. */
  readonly id: string;
  readonly expectedVersion: number;
  /** The tombstone's shortest life from now, in ms (it keeps the record's PTTL when longer). */
  readonly keepMs: number;
}

/** Typed calls of the scripts, registered on one client. */
export interface TokenScripts {
  /** cas-credential-1.lua: fence check, version check, write, publish. */
  casCredential(credentialKey: string, args: CasArgs): Promise<WriteReply>;
  /** restore-credential-1.lua: put a whole record over the version read, publish. */
  restoreCredential(credentialKey: string, args: RestoreArgs): Promise<WriteReply>;
  /** discard-credential-1.lua: delete (or, holding a grant, put aside) a refused record unless it changed; true if removed. */
  discardCredential(credentialKey: string, value: string, version: string): Promise<boolean>;
  /** delete-credential-1.lua: compare-and-delete, leaving a tombstone, publish; true if deleted. */
  deleteCredential(credentialKey: string, args: DeleteArgs): Promise<boolean>;
}

/**
 * Registers the credential scripts on `client` (once per client, see
 * defineLuaScripts) and returns typed wrappers.
 */
export function loadScripts(client: RedisClient): TokenScripts {
  defineLuaScripts(client, "credential", {
    casCredential: 1,
    restoreCredential: 1,
    discardCredential: 1,
    deleteCredential: 1,
  });
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
          c.state,
          c.renewableUntil,
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
          c.state,
          c.renewableUntil,
        ),
      );
    },
    async discardCredential(credentialKey, value, version) {
      return (await client.discardCredential(credentialKey, value, version)) !== 0;
    },
    async deleteCredential(credentialKey, a) {
      const reply = await client.deleteCredential(
        credentialKey,
        a.channel,
        a.id,
        String(a.expectedVersion),
        String(a.keepMs),
      );
      return reply === 1;
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
