import Redlock, { ExecutionError, type Lock, ResourceLockedError } from "redlock";
import { type CredentialKey, describeKey } from "../../core/credential.js";
import type { Lease, LockResult, RefreshLock } from "../../core/ports/refresh-lock.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import type { RedisClient } from "./connection.js";
import { LockLostError, LockStoreUnreachableError } from "./coordination-errors.js";
import type { RedisKeys } from "./keys.js";

export interface RedisRefreshLockOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** Schedules extensions and the lease's expiry watchdog. */
  clock: Clock;
  logger: Logger;
  /**
   * How long a lease lasts unless extended, in ms (default 30 000). It is
   * extended every third of that while the holder runs. It bounds how long a
   * crashed holder blocks the others, and stays well under the 5 minutes
   * during which WeChat still accepts the token a refresh replaced.
   */
  ttlMs?: number;
}

const REFRESH_LOCK_DEFAULTS = Object.freeze({ ttlMs: 30_000 });
const MIN_TTL_MS = 100;
const MAX_TTL_MS = 120_000;

/**
 * The refresh lock of a credential across replicas: a redlock lease on one
 * Redis (standalone, Sentinel or Cluster) plus a fencing token from
 * `INCR fence`, both under the credential's hash tag. The lease is extended
 * here rather than by redlock's `using()`, whose auto-extension has known bugs
 * in 5.0.0-beta.2. It is an efficiency lock; the store's fence check makes a
 * holder that lost its lease harmless.
 */
export class RedisRefreshLock implements RefreshLock {
  readonly #redlock: Redlock;
  readonly #ttlMs: number;
  #closed = false;

  constructor(private readonly o: RedisRefreshLockOptions) {
    const ttlMs = o.ttlMs ?? REFRESH_LOCK_DEFAULTS.ttlMs;
    if (!Number.isInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
      throw new RangeError(
        `refresh lock ttlMs must be a whole number of ms from ${MIN_TTL_MS} to ${MAX_TTL_MS}; got ${ttlMs}`,
      );
    }
    this.#ttlMs = ttlMs;
    // One attempt: a held lock means another replica is refreshing, and the
    // caller waits for its write instead of queueing here.
    this.#redlock = new Redlock([o.client], { retryCount: 0 });
  }

  async withLock<T>(key: CredentialKey, fn: (lease: Lease) => Promise<T>): Promise<LockResult<T>> {
    if (this.#closed) throw new Error("the refresh lock is closed");
    const { clock, keys, client } = this.o;
    const startedAt = clock.now();
    let lock: Lock;
    try {
      lock = await this.#redlock.acquire([keys.lock(key)], this.#ttlMs);
    } catch (err) {
      const failure = await classify(err);
      if (failure.kind === "held")
        return { acquired: false, leaseRemainingMs: await this.#leaseRemaining(key) };
      throw unreachable(
        `could not take the refresh lock of the ${describeKey(key)}`,
        failure.cause,
      );
    }
    let fence: number;
    try {
      fence = await client.incr(keys.fence(key));
    } catch (err) {
      await this.#release(key, lock, true);
      throw unreachable(`could not take the fencing token of the ${describeKey(key)}`, err);
    }
    const keeper = new LeaseKeeper(lock, startedAt + this.#ttlMs - drift(this.#ttlMs), {
      ...this.o,
      ttlMs: this.#ttlMs,
      what: describeKey(key),
    });
    try {
      return { acquired: true, value: await fn({ fence, signal: keeper.signal }) };
    } finally {
      await keeper.stop();
      await this.#release(key, keeper.lock, keeper.signal.aborted);
    }
  }

  /** Refuses new leases; leases in progress run to their end. The client stays open. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * How long the current holder's lease can still last (PTTL): a waiter can
   * try again then instead of waiting a whole lease. If Redis cannot say,
   * a whole lease.
   */
  async #leaseRemaining(key: CredentialKey): Promise<number> {
    const ms = await this.o.client.pttl(this.o.keys.lock(key)).catch(() => -1);
    if (ms === -2) return 0; // released meanwhile
    return ms >= 0 ? Math.min(ms, this.#ttlMs) : this.#ttlMs;
  }

  async #release(key: CredentialKey, lock: Lock, lost: boolean): Promise<void> {
    try {
      await this.#redlock.release(lock);
    } catch (err) {
      // The lease expires on its own; a release is only a courtesy to the next holder.
      const reason = (await classify(err)).cause;
      const fields = { app: key.appId, kind: key.kind, err: messageOf(reason) };
      if (lost) this.o.logger.debug(fields, "did not release a refresh lock that was already lost");
      else this.o.logger.warn(fields, "could not release the refresh lock; it expires by itself");
    }
  }
}

interface KeeperContext {
  clock: Clock;
  logger: Logger;
  ttlMs: number;
  what: string;
}

/**
 * Keeps one lease alive: extends it every third of its TTL, and aborts the
 * signal if an extension fails or the lease runs out before one succeeds
 * (e.g. a command hanging on a dead connection).
 */
class LeaseKeeper {
  readonly #controller = new AbortController();
  #lock: Lock;
  #cancelExtension = () => {};
  #cancelExpiry = () => {};
  #extending: Promise<void> | undefined;
  #stopped = false;

  constructor(
    lock: Lock,
    validUntil: number,
    private readonly c: KeeperContext,
  ) {
    this.#lock = lock;
    this.#arm(validUntil);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The latest lock (each extension returns a new one). */
  get lock(): Lock {
    return this.#lock;
  }

  /** Stops extending and waits for an extension in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimers();
    await this.#extending;
  }

  #arm(validUntil: number): void {
    const { clock } = this.c;
    this.#cancelExtension = clock.schedule(
      () => {
        this.#extending = this.#extend().finally(() => {
          this.#extending = undefined;
        });
      },
      Math.floor(this.c.ttlMs / 3),
    );
    this.#cancelExpiry = clock.schedule(
      () => this.#lose("the lease ran out before an extension succeeded"),
      validUntil - clock.now(),
    );
  }

  async #extend(): Promise<void> {
    const startedAt = this.c.clock.now();
    try {
      const extended = await this.#lock.extend(this.c.ttlMs);
      this.#lock = extended;
      if (this.#stopped || this.signal.aborted) return;
      this.#cancelExpiry();
      this.#arm(startedAt + this.c.ttlMs - drift(this.c.ttlMs));
    } catch (err) {
      if (this.#stopped) return;
      const failure = await classify(err);
      this.#lose(
        failure.kind === "held"
          ? "it expired or was taken over, so another replica may hold it now"
          : failure.kind === "expired"
            ? "it expired before it could be extended"
            : `the lock store is unreachable (${messageOf(failure.cause)})`,
        failure.cause,
      );
    }
  }

  #lose(why: string, cause?: unknown): void {
    if (this.signal.aborted) return;
    this.#cancelTimers();
    const err = new LockLostError(
      `lost the refresh lock of the ${this.c.what}: ${why}; the holder must not write what it fetched`,
      { cause },
    );
    this.c.logger.warn({ err: err.message }, "refresh lock lost");
    this.#controller.abort(err);
  }

  #cancelTimers(): void {
    this.#cancelExtension();
    this.#cancelExpiry();
  }
}

type Failure =
  | { kind: "held"; cause: unknown }
  | { kind: "expired"; cause: unknown }
  | { kind: "error"; cause: unknown };

/**
 * What a redlock failure means. 5.0.0-beta.2 reports contention as an
 * ExecutionError ("unable to achieve a quorum"), the same error as a Redis
 * failure; the per-client votes inside tell them apart: a ResourceLockedError
 * vote is contention, anything else is the store failing.
 */
async function classify(err: unknown): Promise<Failure> {
  if (err instanceof ResourceLockedError) return { kind: "held", cause: err };
  if (!(err instanceof ExecutionError)) return { kind: "error", cause: err };
  const votes: unknown[] = [];
  for (const attempt of err.attempts) {
    const stats: unknown = await attempt.catch(() => undefined);
    const against = (stats as { votesAgainst?: unknown } | undefined)?.votesAgainst;
    if (against instanceof Map) votes.push(...against.values());
  }
  if (votes.length === 0) return { kind: "expired", cause: err };
  if (votes.some((v) => v instanceof ResourceLockedError)) return { kind: "held", cause: err };
  return { kind: "error", cause: votes[0] };
}

function unreachable(what: string, cause: unknown): LockStoreUnreachableError {
  return new LockStoreUnreachableError(
    `the lock store (Redis) is unreachable: ${what}: ${messageOf(cause)}`,
    { cause },
  );
}

/** redlock's allowance for clock drift and Redis's 1 ms expiry precision. */
function drift(ttlMs: number): number {
  return Math.round(0.01 * ttlMs) + 2;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
