import type { CredentialKey, StoredCredential } from "../core/credential.js";
import type { FetchedCredential, UpstreamClients } from "../core/kind.js";
import type { CallPurpose, UpstreamGate } from "../core/ports/upstream-gate.js";
import type { CredentialRules } from "./refresh-policy.js";

/** What a kind's fetch may ask of the rest of the broker: its parent credential, and values to scrub. */
export interface ParentAccess {
  get(key: CredentialKey, signal: AbortSignal): Promise<StoredCredential>;
  /** Compare-and-refresh of the parent after WeChat rejected `value` as stale. */
  reportStale(
    key: CredentialKey,
    value: string,
    errcode: number,
    signal: AbortSignal,
  ): Promise<void>;
  /** Every credential value of the account the broker knows (current and previous). */
  knownValues(appId: string): string[];
}

export interface FetchRequest {
  readonly rules: CredentialRules;
  readonly key: CredentialKey;
  readonly current: StoredCredential | undefined;
  readonly signal: AbortSignal;
  readonly retries: boolean;
  readonly force: boolean;
  readonly purpose: CallPurpose;
}

/**
 * Runs a kind's fetch with what it may use: the upstream clients, the gate
 * (quota, breakers, retries) and its parent credential. The kind decides
 * which endpoint to call and how to read WeChat's answer.
 */
export class KindFetcher {
  constructor(
    private readonly upstreams: UpstreamClients,
    private readonly gate: UpstreamGate,
    private readonly parents: ParentAccess,
    private readonly now: () => number,
  ) {}

  fetch(r: FetchRequest): Promise<FetchedCredential> {
    const { spec, account } = r.rules;
    const parentKey =
      spec.dependsOn === undefined ? undefined : { appId: r.key.appId, kind: spec.dependsOn };
    const noParent = () => new Error(`kind ${spec.name} declares no parent credential`);
    return spec.fetch({
      account,
      key: r.key,
      signal: r.signal,
      retries: r.retries,
      force: r.force,
      purpose: r.purpose,
      current: r.current,
      gate: this.gate,
      now: () => this.now(),
      upstreams: this.upstreams,
      knownValues: () => this.parents.knownValues(r.key.appId),
      parent: (signal) =>
        parentKey ? this.parents.get(parentKey, signal) : Promise.reject(noParent()),
      reportStaleParent: (value, errcode, signal) =>
        parentKey
          ? this.parents.reportStale(parentKey, value, errcode, signal)
          : Promise.reject(noParent()),
    });
  }
}
