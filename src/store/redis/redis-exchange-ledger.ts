import type { ClientContext, RedisKey, Result } from "ioredis";
import type { ExchangeClaim, ExchangeLedger } from "../../core/ports/exchange-ledger.js";
import { type Clock, systemClock } from "../../shared/clock.js";
import type { RedisClient } from "./connection.js";
import type { RedisKeys } from "./keys.js";
import { defineLuaScripts } from "./lua-loader.js";
import { redisCall } from "./redis-command.js";
import { isSealedValue, type ValueCipher, ValueDecryptionError } from "./value-cipher.js";

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    /** lua/exchange/release-exchange-1.lua; call it through RedisExchangeLedger.release. */
    releaseExchange(key: RedisKey, ...argv: string[]): Result<unknown, Context>;
  }
}

export interface RedisExchangeLedgerOptions {
  /** Shared with the token store, which closes it. */
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  /** Seals outcomes like credential values; absent: stored in plaintext, like the values. */
  readonly cipher?: ValueCipher | undefined;
  /** With a cipher: until then (epoch ms), plaintext outcomes are still read. */
  readonly acceptPlaintextUntil?: number | undefined;
  readonly clock?: Clock;
}

/** Exchange ids are digests (base64url): never a code, never a glob or a key separator. */
const EXCHANGE_ID = /^[A-Za-z0-9_-]{16,128}$/;
/** Claims tried when the record lapses between a refused SET NX and the GET that reads it. */
const CLAIM_ROUNDS = 3;

type Stored =
  | { readonly state: "pending"; readonly owner: string }
  | { readonly state: "settled"; readonly owner: string; readonly outcome: string };

/**
 * The exchange ledger shared by replicas: one string per exchange,
 * `RedisKeys.exchange(id)`. A claim is `SET NX PX` of a pending marker naming
 * its owner, so it lapses by itself when its holder dies; the outcome
 * replaces it for the code's life, sealed with the credential cipher (it
 * holds the user's access token) under its own AAD, bound to the exchange and
 * its owner, so it opens nowhere else and its owner cannot be rewritten.
 */
export class RedisExchangeLedger implements ExchangeLedger {
  readonly #clock: Clock;

  constructor(private readonly o: RedisExchangeLedgerOptions) {
    this.#clock = o.clock ?? systemClock;
    defineLuaScripts(o.client, "exchange", { releaseExchange: 1 });
  }

  async claim(id: string, owner: string, claimTtlMs: number): Promise<ExchangeClaim> {
    const key = this.#key(id);
    const marker = JSON.stringify({ state: "pending", owner } satisfies Stored);
    const ttl = positiveMs(claimTtlMs, "claimTtlMs");
    for (let round = 1; ; round++) {
      const set = await redisCall("exchange claim", () =>
        this.o.client.set(key, marker, "PX", ttl, "NX"),
      );
      if (set === "OK") return { state: "claimed" };
      const raw = await redisCall("exchange read", () => this.o.client.get(key));
      if (raw !== null) return this.#read(id, raw);
      // Lapsed or released in between: claim again; the caller polls if it keeps happening.
      if (round >= CLAIM_ROUNDS) return { state: "pending" };
    }
  }

  async settle(id: string, owner: string, outcome: string, keepMs: number): Promise<void> {
    const key = this.#key(id);
    const { cipher } = this.o;
    const stored: Stored = {
      state: "settled",
      owner,
      outcome: cipher ? cipher.encrypt(outcome, aadId(id), binding(owner)) : outcome,
    };
    const ttl = positiveMs(keepMs, "keepMs");
    await redisCall("exchange settle", () =>
      this.o.client.set(key, JSON.stringify(stored), "PX", ttl),
    );
  }

  async release(id: string, owner: string): Promise<void> {
    const key = this.#key(id);
    const marker = JSON.stringify({ state: "pending", owner } satisfies Stored);
    await redisCall("exchange release", () => this.o.client.releaseExchange(key, marker));
  }

  #key(id: string): string {
    // Not quoted: a caller passing a code here by mistake must not log it.
    if (!EXCHANGE_ID.test(id))
      throw new RangeError("an exchange id must be a base64url digest (16 to 128 characters)");
    return this.o.keys.exchange(id);
  }

  #read(id: string, raw: string): ExchangeClaim {
    const stored = parseStored(raw);
    if (stored.state === "pending") return { state: "pending" };
    return { state: "settled", owner: stored.owner, outcome: this.#open(id, stored) };
  }

  #open(id: string, stored: Stored & { state: "settled" }): string {
    const { cipher, acceptPlaintextUntil } = this.o;
    const { outcome, owner } = stored;
    if (isSealedValue(outcome)) {
      if (!cipher)
        throw new ValueDecryptionError(
          `exchange ${id}'s outcome is encrypted but no encryption keys are configured`,
          "no-keys",
        );
      return cipher.decrypt(outcome, aadId(id), binding(owner));
    }
    if (!cipher || (acceptPlaintextUntil !== undefined && this.#clock.now() < acceptPlaintextUntil))
      return outcome;
    throw new Error(
      `exchange ${id}'s outcome is stored unencrypted while encryption keys are configured; refused`,
    );
  }
}

/** The cipher's id for an exchange: never a credential's ("<appId>/<kind>…" has no "oauth-exchange:" form). */
function aadId(id: string): string {
  return `oauth-exchange:${id}`;
}

/** What a sealed outcome is bound to besides the exchange: its label and its owner. */
function binding(owner: string): string {
  return `field=exchange;owner=${owner}`;
}

function parseStored(raw: string): Stored {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const p = (parsed ?? {}) as { state?: unknown; owner?: unknown; outcome?: unknown };
  if (typeof p.owner === "string") {
    if (p.state === "pending") return { state: "pending", owner: p.owner };
    if (p.state === "settled" && typeof p.outcome === "string")
      return { state: "settled", owner: p.owner, outcome: p.outcome };
  }
  // Not quoted: it may hold anything, a token included.
  throw new Error("an exchange record in Redis is not one this broker writes");
}

function positiveMs(ms: number, name: string): number {
  if (!Number.isSafeInteger(ms) || ms < 1)
    throw new RangeError(`${name} must be a positive whole number of ms`);
  return ms;
}
