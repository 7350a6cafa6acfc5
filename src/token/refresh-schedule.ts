import {
  type CredentialKey,
  keyId,
  parseKeyId,
  type StoredCredential,
} from "../core/credential.js";
import type { DueQueue } from "../core/ports/due-queue.js";
import type { TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { type RefreshPolicy, retryDelayMs } from "./refresh-policy.js";
import type { Refresher } from "./refresher.js";
import type { Resolved, RulesBook } from "./rules-book.js";

export interface RefreshScheduleOptions {
  rules: RulesBook;
  refresher: Refresher;
  store: TokenStore;
  queue: DueQueue;
  clock: Clock;
  policy: RefreshPolicy;
  /**
   * Jitter in [0, 1) for one version of a credential. Deterministic by
   * default, so every replica computes the same due time for a version.
   */
  jitter: (id: string, version: number) => number;
  /** Randomness for retry backoff. */
  random: () => number;
  logger: Logger;
  /** Called when a due run found a newer version already stored. */
  onNewer: (key: CredentialKey, credential: StoredCredential) => void;
}

/**
 * Proactive refreshes, planned in a DueQueue (a timer per credential on a
 * single node; a sorted set in Redis shared by all replicas). A failed run is
 * retried with backoff while the current credential keeps being served; a run
 * that gets the same value back from WeChat tries again nearer the end.
 */
export class RefreshSchedule {
  readonly #retries = new Map<string, number>();
  #closed = false;

  constructor(private readonly o: RefreshScheduleOptions) {}

  /** Starts taking due refreshes from the queue (no I/O before this). */
  start(): void {
    this.o.queue.start((id) => {
      this.#onDue(id).catch((err: unknown) =>
        this.o.logger.error({ err, id }, "scheduled refresh crashed"),
      );
    });
  }

  /** Plans the refresh of a newly stored version. */
  planNew(key: CredentialKey, credential: StoredCredential): void {
    const at = this.#refreshAt(key, credential);
    if (at === undefined) return;
    this.#retries.delete(keyId(key));
    this.#plan(keyId(key), at, false);
  }

  /** Plans a refresh of `credential` unless one is planned already (here or by another replica). */
  ensurePlanned(key: CredentialKey, credential: StoredCredential): void {
    if (this.o.queue.dueAt(keyId(key)) !== undefined || this.o.refresher.isRunning(key)) return;
    const at = this.#refreshAt(key, credential);
    if (at !== undefined) this.#plan(keyId(key), at, true);
  }

  /** When the next refresh of `key` is due, if known here. */
  dueAt(key: CredentialKey): number | undefined {
    return this.o.queue.dueAt(keyId(key));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.o.queue.close();
  }

  #refreshAt(key: CredentialKey, c: StoredCredential): number | undefined {
    const resolved = this.#resolve(key);
    if (!resolved) return undefined;
    return resolved.rules.refreshAt(c, this.o.jitter(keyId(key), c.version));
  }

  /** A credential of an app no longer configured, or of an on-demand kind, is never planned. */
  #resolve(key: CredentialKey): Resolved | undefined {
    const resolved = this.o.rules.find(key);
    return resolved?.rules.spec.proactive ? resolved : undefined;
  }

  #plan(id: string, at: number, ifAbsent: boolean): void {
    const q = this.o.queue;
    (ifAbsent ? q.planIfAbsent(id, at) : q.plan(id, at)).catch((err: unknown) => {
      this.o.logger.warn({ id, err: (err as Error).message }, "could not plan a refresh");
    });
  }

  async #onDue(id: string): Promise<void> {
    const key = parseKeyId(id);
    const resolved = key && this.#resolve(key);
    if (!key || !resolved || this.#closed) {
      await this.o.queue.release(id);
      return;
    }
    const { clock, policy } = this.o;
    let next: number | undefined;
    try {
      const current = await this.o.store.get(key);
      if (!current) return; // nothing to refresh; the next fetch plans again
      const due = this.#refreshAt(key, current) ?? Number.POSITIVE_INFINITY;
      // Planned for an older version that another replica has since replaced.
      if (due > clock.now()) {
        next = due;
        return;
      }
      const result = await this.o.refresher.run({
        rules: resolved.rules,
        key,
        reason: "scheduled",
        ifVersion: current.version,
        ignoreFailureHold: true,
      }).promise;
      if (result.changed) {
        this.#retries.delete(id);
        next = result.credential ? this.#refreshAt(key, result.credential) : undefined;
      } else if (result.fetched && result.credential) {
        next = resolved.rules.nextAttemptAfterSameValue(result.credential, clock.now());
      } else if (result.credential) {
        this.o.onNewer(key, result.credential);
        next = this.#refreshAt(key, result.credential);
      }
    } catch (err) {
      if (this.#closed) return;
      const attempt = (this.#retries.get(id) ?? 0) + 1;
      this.#retries.set(id, attempt);
      const delay = retryDelayMs(attempt, isSlowFailure(err), policy, this.o.random());
      this.o.logger.warn(
        { app: key.appId, kind: key.kind, attempt, retryInMs: delay },
        "scheduled refresh failed; the current credential is served while it is valid",
      );
      next = clock.now() + delay;
    } finally {
      if (next !== undefined && !this.#closed) this.#plan(id, next, false);
      await this.o.queue.release(id).catch(() => {});
    }
  }
}

/** Config and quota errors, and errcodes the broker does not know, are not fixed by retrying soon. */
function isSlowFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return (
    code === "BROKER_UPSTREAM_CONFIG" ||
    code === "BROKER_QUOTA_EXHAUSTED" ||
    code === "BROKER_UPSTREAM_REJECTED"
  );
}

/** A stable number in [0, 1) from a credential id and version (FNV-1a). */
export function versionJitter(id: string, version: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${id}#${version}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}
