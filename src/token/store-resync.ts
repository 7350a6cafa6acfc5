import { type CredentialKey, parseKeyId, type StoredCredential } from "../core/credential.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";

/**
 * Whether what a replica holds and what the store holds disagree in a way
 * only the store's restore rule (restore-plan.ts) may settle: two different
 * values where the held one has the higher (or same) version or was fetched
 * later, or the same value stored under a lower version. Otherwise the
 * replica simply adopts the stored record.
 */
export function needsReconcile(held: StoredCredential, stored: StoredCredential): boolean {
  if (held.value === stored.value) return held.version > stored.version;
  return held.version >= stored.version || held.fetchedAt > stored.fetchedAt;
}

/**
 * Hands `held` to the store's restore rule and returns what the replica
 * should hold afterwards: the credential WeChat issued last, numbered above
 * both. The store decides atomically, so replicas doing this at once agree.
 */
export async function reconcileWithStore(
  store: TokenStore,
  key: CredentialKey,
  held: StoredCredential,
): Promise<StoredCredential | undefined> {
  const result = await store.restore(key, held);
  return result.written ? result.credential : result.current;
}

/**
 * After the link to a shared store was down, brings a replica and the store
 * back in line, credential by credential: adopt what other replicas wrote
 * meanwhile, and write back what the store lacks (it may have restarted
 * empty, or this replica fetched while it was unreachable). Where the two
 * disagree, the store's restore rule keeps the credential WeChat issued last
 * and numbers it above both, so watchers never see versions go down and no
 * two values share a version. Expired credentials are not written back.
 */
export async function resyncWithStore(o: {
  held: Iterable<[string, StoredCredential]>;
  store: TokenStore;
  clock: Clock;
  logger: Logger;
  adopt: (update: CredentialUpdate) => void;
}): Promise<void> {
  for (const [id, known] of [...o.held]) {
    const key = parseKeyId(id);
    if (!key) continue;
    const stored = await o.store.get(key);
    if (stored && !needsReconcile(known, stored)) {
      if (stored.version !== known.version) o.adopt({ key, credential: stored });
      continue;
    }
    if (!stored && known.expiresAt <= o.clock.now()) continue;
    const settled = await reconcileWithStore(o.store, key, known);
    if (settled) o.adopt({ key, credential: settled });
    o.logger.info(
      {
        app: key.appId,
        kind: key.kind,
        version: known.version,
        settledVersion: settled?.version,
        kept: settled?.value === known.value,
      },
      stored
        ? "reconciled a credential with the store"
        : "wrote back a credential the store did not have",
    );
  }
}
