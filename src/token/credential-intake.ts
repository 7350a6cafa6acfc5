import { type CredentialKey, keyId, type StoredCredential } from "../core/credential.js";
import type { CredentialUpdate } from "../core/ports/token-store.js";
import type { AppRegistry } from "./app.js";
import type { CredentialCache } from "./credential-cache.js";
import type { RefreshSchedule } from "./refresh-schedule.js";
import type { WatchHub } from "./watch-hub.js";

export interface IntakeDeps {
  readonly apps: Pick<AppRegistry, "find">;
  readonly cache: CredentialCache;
  readonly watchers: WatchHub<StoredCredential>;
  readonly schedule: Pick<RefreshSchedule, "planNew" | "ensurePlanned">;
}

/**
 * Where every credential this replica learns of goes: the newest version into
 * L1 with its proactive refresh planned, and store writes on to the watchers.
 */
export class CredentialIntake {
  constructor(private readonly d: IntakeDeps) {}

  /** Feeds L1, the refresh schedule and watchers from every store write. */
  adopt({ key, credential }: CredentialUpdate): void {
    this.remember(key, credential);
    this.d.watchers.publish(keyId(key), credential);
  }

  /** Keeps the newest known version in L1 and plans its proactive refresh. */
  remember(key: CredentialKey, credential: StoredCredential): void {
    const { apps, cache, schedule } = this.d;
    // A removed app stays forgotten, though another replica (or a fetch that was running) still writes it.
    if (!apps.find(key.appId)) return;
    if (cache.offer(key, credential)) schedule.planNew(key, credential);
    else {
      const known = cache.get(key);
      if (known) schedule.ensurePlanned(key, known);
    }
  }
}
