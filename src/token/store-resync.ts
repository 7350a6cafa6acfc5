import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { CredentialUpdate, TokenStore } from "../store/token-store.js";
import { parseKeyId, type StoredCredential } from "./credential.js";

/**
 * After the link to a shared store was down, brings a replica and the store
 * back in line, credential by credential: adopt what other replicas wrote
 * meanwhile, and write back what the store lacks (it may have restarted
 * empty, or this replica fetched while it was unreachable), keeping the
 * version so watchers never see versions go down. Expired credentials are
 * left alone. Every replica does this, so the cluster converges on one
 * version per credential.
 */
export async function resyncWithStore(o: {
  held: ReadonlyMap<string, StoredCredential>;
  store: TokenStore;
  clock: Clock;
  logger: Logger;
  adopt: (update: CredentialUpdate) => void;
}): Promise<void> {
  for (const [id, known] of [...o.held]) {
    const key = parseKeyId(id);
    if (!key) continue;
    const stored = await o.store.get(key);
    if (stored && stored.version >= known.version) {
      if (stored.version > known.version) o.adopt({ key, credential: stored });
      continue;
    }
    if (known.expiresAt <= o.clock.now()) continue;
    const result = await o.store.restore(key, known);
    if (!result.written && result.current) o.adopt({ key, credential: result.current });
    o.logger.info(
      { app: key.appId, kind: key.kind, version: known.version, written: result.written },
      "wrote back a credential the store did not have",
    );
  }
}
