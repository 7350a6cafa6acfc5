import { type CredentialKey, describeKey, type StoredCredential } from "../core/credential.js";
import type { TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";
import { StoreUnavailableError, UpstreamUnavailableError } from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { raceAbort } from "../shared/race-abort.js";
import type { CredentialCache } from "./credential-cache.js";
import type { Refresher, RefreshOutcome } from "./refresher.js";
import type { Resolved } from "./rules-book.js";

export interface LoaderDeps {
  readonly store: TokenStore;
  readonly cache: CredentialCache;
  readonly refresher: Refresher;
  readonly clock: Clock;
  readonly logger: Logger;
  remember(key: CredentialKey, credential: StoredCredential): void;
}

/**
 * GetToken's cold path: the stored credential if servable, otherwise one
 * refresh however many callers wait; if that fails, a credential WeChat still
 * accepts is served until it expires (serve-stale).
 */
export async function loadCredential(
  d: LoaderDeps,
  { rules }: Resolved,
  key: CredentialKey,
  signal: AbortSignal,
): Promise<StoredCredential> {
  // An unreachable store is handled by the refresher (degraded mode).
  const stored = await d.store.get(key).catch((err: unknown) => {
    if (err instanceof StoreUnavailableError) return undefined;
    throw err;
  });
  if (stored) {
    d.remember(key, stored);
    if (rules.isServable(stored, d.clock.now())) return stored;
  }
  let result: RefreshOutcome;
  try {
    result = await raceAbort(
      d.refresher.run({ rules, key, reason: stored ? "expired" : "cold", unlessServable: true })
        .promise,
      signal,
    );
  } catch (err) {
    // Serve stale: a credential WeChat still accepts beats an error.
    const held = d.cache.get(key);
    if (held && held.expiresAt > d.clock.now() && !signal.aborted) {
      d.logger.warn(
        { app: key.appId, kind: key.kind, version: held.version, expiresAt: held.expiresAt },
        "refresh failed; serving the current credential until it expires",
      );
      return held;
    }
    throw err;
  }
  const credential = result.credential;
  if (credential) d.remember(key, credential);
  // A ticket WeChat re-confirmed may be inside its last second; it is still
  // valid, so hand it out rather than fail.
  if (credential && credential.expiresAt > d.clock.now()) return credential;
  throw new UpstreamUnavailableError(
    `WeChat returned no valid ${describeKey(key)} (the one it returned has already expired); retry shortly`,
  );
}
