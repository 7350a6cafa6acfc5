import type { DueQueue } from "../../core/ports/due-queue.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import type { RedisClient } from "./connection.js";
import { type CoordinationScripts, coordinationScripts } from "./coordination-scripts.js";
import type { RedisKeys } from "./keys.js";

export interface RedisDueQueueOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** Drives polling and supplies `now` to the claim script. */
  clock: Clock;
  logger: Logger;
  /** How often to look for due ids, in ms (default 1000), varied by ±10% per poll. */
  pollMs?: number;
  /** How long a claimed id stays with this replica before others may take it, in ms (default 60 000). */
  claimTtlMs?: number;
  /** The most ids one poll claims (default 100). */
  batchLimit?: number;
  /** At most one warning per this many ms while polling fails (default 60 000). */
  warnEveryMs?: number;
  /** Randomness in [0, 1) for the poll jitter (default Math.random). */
  random?: () => number;
}

const DUE_QUEUE_DEFAULTS = Object.freeze({
  pollMs: 1000,
  claimTtlMs: 60_000,
  batchLimit: 100,
  warnEveryMs: 60_000,
});

/**
 * The refresh schedule shared by all replicas: a sorted set of id → due time
 * and one of id → claim expiry, under one hash tag. Each poll is one Lua call
 * (claim-due-2.lua) that moves due, unclaimed ids into the claims set, so an
 * id goes to one replica at a time. An id the handler drops without planning
 * it again leaves the schedule, as with the single-node queue; an id whose
 * claimant crashed comes back once its claim expires. Nothing is kept per id
 * here apart from a small cache for `dueAt`.
 */
export class RedisDueQueue implements DueQueue {
  readonly #o: Required<Omit<RedisDueQueueOptions, "client" | "keys" | "clock" | "logger">>;
  readonly #scripts: CoordinationScripts;
  /** Due times this replica planned or found planned; dropped when the id is handed out. */
  readonly #due = new Map<string, number>();
  /** Claims this replica holds: id → claim expiry (identifies the claim on release). */
  readonly #claims = new Map<string, number>();
  #handler: ((id: string) => void) | undefined;
  #cancelPoll: (() => void) | undefined;
  #polling: Promise<void> | undefined;
  #closed = false;
  #failures = 0;
  #lastWarnAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly c: RedisDueQueueOptions) {
    this.#o = {
      pollMs: c.pollMs ?? DUE_QUEUE_DEFAULTS.pollMs,
      claimTtlMs: c.claimTtlMs ?? DUE_QUEUE_DEFAULTS.claimTtlMs,
      batchLimit: c.batchLimit ?? DUE_QUEUE_DEFAULTS.batchLimit,
      warnEveryMs: c.warnEveryMs ?? DUE_QUEUE_DEFAULTS.warnEveryMs,
      random: c.random ?? Math.random,
    };
    for (const name of ["pollMs", "claimTtlMs", "batchLimit"] as const) {
      const v = this.#o[name];
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`due queue ${name} must be a positive whole number; got ${v}`);
      }
    }
    this.#scripts = coordinationScripts(c.client);
  }

  async plan(id: string, at: number): Promise<void> {
    await this.c.client.zadd(this.c.keys.scheduleDue, at, id);
    this.#due.set(id, at);
  }

  async planIfAbsent(id: string, at: number): Promise<void> {
    const due = this.c.keys.scheduleDue;
    const replies = await this.c.client.pipeline().zadd(due, "NX", at, id).zscore(due, id).exec();
    const [added, score] = replies ?? [];
    if (added?.[0]) throw added[0];
    if (score?.[0]) throw score[0];
    // The id may have been claimed (and so left the set) in between: then only `at` is known.
    const planned = score?.[1] == null ? at : Number(score[1]);
    this.#due.set(id, planned);
  }

  start(handler: (id: string) => void): void {
    if (this.#closed || this.#handler) return;
    this.#handler = handler;
    this.#schedulePoll();
  }

  async release(id: string): Promise<void> {
    const claimedUntil = this.#claims.get(id);
    if (claimedUntil === undefined) return;
    this.#claims.delete(id);
    await this.#scripts.releaseClaim(this.c.keys.scheduleClaims, id, claimedUntil);
  }

  dueAt(id: string): number | undefined {
    return this.#due.get(id);
  }

  /** Stops polling (idempotent). Ids already handed out are still released by their handler. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelPoll?.();
    this.#cancelPoll = undefined;
    await this.#polling;
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    const { pollMs, random } = this.#o;
    const delay = Math.round(pollMs * (0.9 + 0.2 * random()));
    this.#cancelPoll = this.c.clock.schedule(() => {
      this.#cancelPoll = undefined;
      this.#polling = this.#poll().finally(() => {
        this.#polling = undefined;
        this.#schedulePoll();
      });
    }, delay);
  }

  async #poll(): Promise<void> {
    const { keys, clock, logger } = this.c;
    const now = clock.now();
    let ids: string[];
    try {
      ids = await this.#scripts.claimDue(
        keys.scheduleDue,
        keys.scheduleClaims,
        now,
        this.#o.claimTtlMs,
        this.#o.batchLimit,
      );
    } catch (err) {
      this.#pollFailed(err);
      return;
    }
    if (this.#failures > 0) {
      logger.info(
        { failedPolls: this.#failures },
        "polling the refresh schedule in Redis works again",
      );
      this.#failures = 0;
      this.#lastWarnAt = Number.NEGATIVE_INFINITY;
    }
    const claimedUntil = now + this.#o.claimTtlMs;
    for (const id of ids) {
      this.#due.delete(id);
      this.#claims.set(id, claimedUntil);
      if (this.#closed) {
        // Claimed while closing: hand it straight back for another replica.
        this.release(id).catch(() => {});
        continue;
      }
      try {
        this.#handler?.(id);
      } catch (err) {
        logger.error({ id, err }, "the refresh schedule's handler threw");
        this.release(id).catch(() => {});
      }
    }
  }

  #pollFailed(err: unknown): void {
    this.#failures++;
    const now = this.c.clock.now();
    if (now - this.#lastWarnAt < this.#o.warnEveryMs) return;
    this.#lastWarnAt = now;
    this.c.logger.warn(
      { failedPolls: this.#failures, err: err instanceof Error ? err.message : String(err) },
      "could not poll the refresh schedule in Redis; refreshes planned there wait until it answers",
    );
  }
}
