import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { AppliedVersions } from "../core/ports/applied-versions.js";

/** Where a credential's clients are, as their acknowledgements say. */
export interface RolloutSummary {
  /** Live client instances on the current version (or a newer one this replica has not heard of yet). */
  readonly current: number;
  /** Live client instances still on a version the current one replaced. */
  readonly superseded: number;
  /** The newest superseded version a client still uses, when any does. */
  readonly supersededVersion?: number;
  /**
   * Until when the superseded versions keep working at WeChat (the overlap
   * after the current version replaced them), when any is in use and known.
   */
  readonly supersededValidUntil?: number;
}

/**
 * Applied-version feedback: client instances acknowledge the version they
 * switched to (AckToken), again every `renewMs` while they keep it, and are
 * forgotten after three renewals missed. Holders are named by the
 * authenticated client and its instance, so a client cannot speak for
 * another; only counts leave here.
 */
export class AppliedRollout {
  constructor(
    private readonly o: {
      readonly applied: AppliedVersions;
      /** How often clients acknowledge again. */
      readonly renewMs: number;
    },
  ) {}

  get renewMs(): number {
    return this.o.renewMs;
  }

  ack(key: CredentialKey, client: string, instance: string, version: number): Promise<void> {
    return this.o.applied.record(key, `${client}/${instance}`, version, this.o.renewMs * 3);
  }

  async summary(key: CredentialKey, current: StoredCredential): Promise<RolloutSummary> {
    let onCurrent = 0;
    let superseded = 0;
    let supersededVersion: number | undefined;
    for (const [version, count] of await this.o.applied.count(key)) {
      if (version >= current.version) {
        onCurrent += count;
        continue;
      }
      superseded += count;
      supersededVersion = Math.max(supersededVersion ?? 0, version);
    }
    // The version just replaced dies at the current one's previousValidUntil;
    // older ones died before it, so that bounds them all.
    const until = superseded > 0 ? current.previousValidUntil : undefined;
    return {
      current: onCurrent,
      superseded,
      ...(supersededVersion === undefined ? {} : { supersededVersion }),
      ...(until === undefined ? {} : { supersededValidUntil: until }),
    };
  }
}
