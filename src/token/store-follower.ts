import { type CredentialKey, keyId } from "../core/credential.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { CredentialCache } from "./credential-cache.js";
import { type RefreshPolicy, retryDelayMs } from "./refresh-policy.js";
import { needsReconcile, reconcileWithStore, resyncWithStore } from "./store-resync.js";

export interface StoreFollowerDeps {
  readonly store: TokenStore;
  readonly cache: CredentialCache;
  readonly clock: Clock;
  readonly policy: RefreshPolicy;
  readonly random: () => number;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** A credential as the store holds it now: to L1, the schedule and watchers. */
  adopt(update: CredentialUpdate): void;
  /** A credential was deleted from the store (a forgotten or void grant). */
  dropped(key: CredentialKey): void;
}

/**
 * Keeps this replica in line with the store, the source of truth: every
 * write notice is re-read and adopted, disagreements with L1 are settled by
 * the store's restore rule, and after the store's link was down everything
 * held is resynchronised.
 */
export class StoreFollower {
  /** Credentials whose L1 copy is being reconciled with the store. */
  readonly #reconciling = new Set<string>();
  #unsubscribe: Array<() => void> = [];

  constructor(private readonly d: StoreFollowerDeps) {}

  start(): void {
    this.#unsubscribe = [
      this.d.store.subscribe((u) => this.#onStored(u)),
      this.d.store.onResync(() => this.#resync(1)),
      this.d.store.onDelete((key) => this.d.dropped(key)),
    ];
  }

  stop(): void {
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
  }

  /**
   * The store's record disagrees with L1 (after a restart, two replicas'
   * values): its restore rule settles which one WeChat issued last, and L1
   * takes that.
   */
  #onStored(update: CredentialUpdate): void {
    const id = keyId(update.key);
    const held = this.d.cache.get(update.key);
    if (!held || !needsReconcile(held, update.credential)) {
      this.d.adopt(update);
      return;
    }
    if (this.#reconciling.has(id)) return;
    this.#reconciling.add(id);
    reconcileWithStore(this.d.store, update.key, held)
      .then((settled) => {
        if (settled) this.d.adopt({ key: update.key, credential: settled });
      })
      .catch((err: unknown) => {
        // The resync after the store's next reconnect settles it.
        this.d.logger.warn(
          { app: update.key.appId, kind: update.key.kind, err: (err as Error).message },
          "could not reconcile a credential with the store",
        );
      })
      .finally(() => this.#reconciling.delete(id));
  }

  /** Resyncs with the store; retries with backoff if the store fails again meanwhile. */
  #resync(attempt: number): void {
    const d = this.d;
    resyncWithStore({
      held: d.cache.all(),
      store: d.store,
      clock: d.clock,
      logger: d.logger,
      adopt: (u) => d.adopt(u),
    }).catch((err: unknown) => {
      if (d.signal.aborted) return;
      const delay = retryDelayMs(attempt, false, d.policy, d.random());
      d.logger.warn(
        { err: (err as Error).message, attempt, retryInMs: delay },
        "resync with the store failed",
      );
      d.clock.schedule(() => this.#resync(attempt + 1), delay);
    });
  }
}
