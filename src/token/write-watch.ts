import { type CredentialKey, keyId } from "../core/credential.js";
import type { TokenStore } from "../core/ports/token-store.js";
import type { Clock } from "../shared/clock.js";

/**
 * Listens for a write of one credential above a known version. Opened before
 * the lock attempt that may fail, so the holder's write cannot slip between
 * that attempt and the subscription.
 */
export interface WriteWatch {
  /** A newer version has been notified since the watch was opened. */
  readonly seen: boolean;
  /** Resolves true once a newer version is notified, false after `ms` or when `signal` aborts. */
  wait(ms: number): Promise<boolean>;
  close(): void;
}

export function watchWrites(
  deps: { store: TokenStore; clock: Clock; signal: AbortSignal },
  key: CredentialKey,
  version: number,
): WriteWatch {
  const id = keyId(key);
  let seen = false;
  let wake: (() => void) | undefined;
  const unsubscribe = deps.store.subscribe((u) => {
    if (keyId(u.key) !== id || u.credential.version <= version) return;
    seen = true;
    wake?.();
  });
  return {
    get seen() {
      return seen;
    },
    wait(ms) {
      if (seen || deps.signal.aborted) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const done = () => {
          wake = undefined;
          cancel();
          deps.signal.removeEventListener("abort", done);
          resolve(seen);
        };
        wake = done;
        const cancel = deps.clock.schedule(done, ms);
        deps.signal.addEventListener("abort", done, { once: true });
      });
    },
    close: unsubscribe,
  };
}
