import {
  type CredentialKey,
  describeKey,
  keyId,
  type StoredCredential,
} from "../core/credential.js";
import type { FetchedCredential, KindAccount } from "../core/kind.js";
import type { TokenStore } from "../core/ports/token-store.js";
import { ReauthorizeError, UpstreamUnavailableError } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { raceAbort } from "../shared/race-abort.js";
import type { CredentialCache } from "./credential-cache.js";
import type { Refresher } from "./refresher.js";
import type { RulesBook } from "./rules-book.js";
import { grantDetails } from "./to-broker-error.js";
import type { WatchHub } from "./watch-hub.js";

export interface GrantsDeps {
  readonly store: TokenStore;
  readonly refresher: Refresher;
  readonly rules: RulesBook;
  readonly cache: CredentialCache;
  readonly watchers: WatchHub<StoredCredential>;
  readonly logger: Logger;
  /** Takes a credential written here into L1, the schedule and watchers. */
  remember(key: CredentialKey, credential: StoredCredential): void;
}

/**
 * The grants of subject kinds (a user's OAuth grant): written when a code
 * exchange obtains one, deleted when the subject logs out (forget) or WeChat
 * voids it, and dropped from this replica when any replica deletes one.
 */
export class Grants {
  constructor(private readonly d: GrantsDeps) {}

  /** The account a subject credential belongs to; throws like GetToken for an unknown app or kind. */
  account(key: CredentialKey): KindAccount {
    return this.d.rules.resolve(key).app;
  }

  /**
   * Stores a grant obtained outside the kind's fetch (a code exchange) as the
   * subject's next credential, under the refresh lock like any refresh, so
   * it is numbered and fenced like one and reaches every replica's watchers.
   */
  async store(
    key: CredentialKey,
    supplied: FetchedCredential,
    signal: AbortSignal,
  ): Promise<StoredCredential> {
    const { rules } = this.d.rules.resolve(key);
    const run = this.d.refresher.run({ rules, key, reason: "grant", supplied });
    const result = await raceAbort(run.promise, signal);
    if (!result.credential || !result.changed) {
      throw new UpstreamUnavailableError(
        `the grant for the ${describeKey(key)} could not be stored (a newer write won); retry`,
      );
    }
    this.d.remember(key, result.credential);
    return result.credential;
  }

  /** Deletes the subject's grant; false when none was held. */
  async forget(key: CredentialKey): Promise<boolean> {
    this.d.rules.resolve(key);
    // A refresh may write a new version between the read and the delete: read again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.d.store.get(key);
      if (current === undefined) {
        this.dropped(key);
        return false;
      }
      if (await this.d.store.delete(key, current.version)) {
        this.dropped(key);
        return true;
      }
    }
    throw new UpstreamUnavailableError(
      `the grant for the ${describeKey(key)} kept changing while it was being deleted; retry`,
    );
  }

  /** WeChat voided the grant `current` (40030, 42002, 42007): delete that version. */
  async voided(key: CredentialKey, current: StoredCredential): Promise<void> {
    try {
      await this.d.store.delete(key, current.version);
    } catch (err) {
      // The next refresh meets the same errcode and tries again.
      this.d.logger.warn(
        { app: key.appId, kind: key.kind, err: (err as Error).message },
        "could not delete a void grant",
      );
    }
    this.dropped(key);
  }

  /** A grant was deleted (here or on another replica): forget it and end its watches. */
  dropped(key: CredentialKey): void {
    this.d.cache.forget(key);
    this.d.watchers.failOne(
      keyId(key),
      new ReauthorizeError(
        `the grant for the ${describeKey(key)} was deleted (forgotten, or void at WeChat): ` +
          "send the user through WeChat's authorization again",
        grantDetails(key),
      ),
    );
  }
}
