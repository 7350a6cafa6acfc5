import { parseKeyId, type StoredCredential } from "../core/credential.js";
import { AppRemovedError, UnknownAppError } from "../shared/errors.js";
import type { AppRegistry } from "./app.js";
import type { CredentialCache } from "./credential-cache.js";
import type { RulesBook } from "./rules-book.js";
import type { WatchHub } from "./watch-hub.js";

/**
 * After a config reload (AppRegistry.replace): ends the watches of every
 * credential no longer configured (a removed app: AppRemovedError; a kind
 * its app no longer offers: the error a new watch would get) and forgets
 * the credentials held for removed apps. Their scheduled refreshes lapse
 * on their own: the schedule releases keys that no longer resolve.
 */
export function retireUnconfigured(d: {
  readonly apps: Pick<AppRegistry, "find">;
  readonly rules: RulesBook;
  readonly cache: CredentialCache;
  readonly watchers: WatchHub<StoredCredential>;
}): void {
  d.watchers.fail((id) => {
    const key = parseKeyId(id);
    if (!key) return undefined;
    try {
      d.rules.resolve(key);
      return undefined;
    } catch (err) {
      return err instanceof UnknownAppError ? new AppRemovedError(key.appId) : err;
    }
  });
  for (const { key } of d.cache.entries())
    if (!d.apps.find(key.appId)) d.cache.forgetAccount(key.appId);
}
