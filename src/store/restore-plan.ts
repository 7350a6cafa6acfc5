import type { StoredCredential } from "../core/credential.js";

/**
 * What a store does when a replica hands back the credential it holds
 * (`known`) and the store holds `stored`: the rule every store applies, so
 * replicas converge on the credential WeChat issued last, and versions only
 * grow and never number two different values alike.
 *
 * - Nothing stored: put `known` as it is.
 * - The same value: keep the higher of the two versions.
 * - Different values: the one fetched later wins (WeChat issued it last; a
 *   classic token's earlier value dies 5 minutes after). The winner is put at
 *   a version above both, unless it already is.
 * - The same fetch time (a coarse or fake clock): the higher version, which
 *   was written later in one store's history; then the store.
 */
export type RestorePlan =
  /** The store already holds the right record. */
  | { readonly put: undefined }
  /** Write `put` (with its version) over the stored version read. */
  | { readonly put: StoredCredential };

export function planRestore(
  stored: StoredCredential | undefined,
  known: StoredCredential,
): RestorePlan {
  if (!stored) return { put: known };
  if (stored.value === known.value)
    return stored.version >= known.version ? { put: undefined } : { put: known };
  if (
    known.fetchedAt > stored.fetchedAt ||
    (known.fetchedAt === stored.fetchedAt && known.version > stored.version)
  )
    return { put: { ...known, version: Math.max(known.version, stored.version + 1) } };
  return stored.version > known.version
    ? { put: undefined }
    : { put: { ...stored, version: known.version + 1 } };
}
