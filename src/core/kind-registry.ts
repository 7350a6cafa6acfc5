import type { CredentialKindSpec, QuotaEndpointSpec } from "./kind.js";

/** An account type (official account, mini program, …) and the account-level endpoints it meters. */
export interface AccountTypeSpec {
  readonly name: string;
  /** How people read it in messages, e.g. "official account". */
  readonly label: string;
  /** Metered calls that belong to the account rather than a kind (e.g. clear_quota). */
  readonly endpoints: readonly QuotaEndpointSpec[];
  /** The group whose windowed budgets an account shares with others (a WeCom app's corp). */
  readonly quotaGroup?: (account: { readonly appid: string }) => string;
}

/**
 * The registered account types and credential kinds. Built once from the
 * list in src/credentials/index.ts; everything that needs to know which
 * kinds exist (config, ACLs, the CLI, the RPC layer, quota endpoints, metric
 * labels) asks it.
 */
export class KindRegistry {
  /** The first spec registered under each name: what every family agrees on (name, number, subject). */
  readonly #kinds: ReadonlyMap<string, CredentialKindSpec>;
  readonly #byProto: ReadonlyMap<number, CredentialKindSpec>;
  readonly #types: ReadonlyMap<string, AccountTypeSpec>;
  /** The spec serving each (account type, kind name). */
  readonly #byAccount: ReadonlyMap<string, CredentialKindSpec>;
  readonly #all: readonly CredentialKindSpec[];

  /**
   * A kind name may be registered more than once, by families whose account
   * types differ (WeCom's access_token is fetched from another host than an
   * official account's): the specs must agree on the proto number and the
   * subject, and each account type gets exactly one.
   */
  constructor(types: readonly AccountTypeSpec[], kinds: readonly CredentialKindSpec[]) {
    this.#types = new Map(types.map((t) => [t.name, t]));
    if (this.#types.size !== types.length) throw new Error("kind registry: duplicate account type");
    const first = new Map<string, CredentialKindSpec>();
    const byProto = new Map<number, CredentialKindSpec>();
    const byAccount = new Map<string, CredentialKindSpec>();
    for (const k of kinds) {
      const same = first.get(k.name);
      const sameNumber = byProto.get(k.protoNumber);
      if (same && (same.protoNumber !== k.protoNumber || same.subject !== k.subject))
        throw new Error(`kind ${k.name}: registered twice with another proto number or subject`);
      if (!same && sameNumber)
        throw new Error(`kind ${k.name}: proto number ${k.protoNumber} is ${sameNumber.name}'s`);
      if (!same) first.set(k.name, k);
      if (!sameNumber) byProto.set(k.protoNumber, k);
      for (const t of k.accountTypes) {
        if (!this.#types.has(t)) throw new Error(`kind ${k.name}: unknown account type ${t}`);
        if (byAccount.has(`${t}/${k.name}`))
          throw new Error(`kind ${k.name}: registered twice for account type ${t}`);
        byAccount.set(`${t}/${k.name}`, k);
      }
    }
    this.#kinds = first;
    this.#byProto = byProto;
    this.#byAccount = byAccount;
    this.#all = kinds;
    for (const k of kinds) {
      for (const t of k.accountTypes) {
        if (k.dependsOn === undefined) continue;
        if (!byAccount.has(`${t}/${k.dependsOn}`))
          throw new Error(
            `kind ${k.name}: depends on ${k.dependsOn}, which account type ${t} does not have`,
          );
      }
    }
  }

  /** The kind's shared declaration (name, proto number, subject); see `forAccount` for its behaviour. */
  get(name: string): CredentialKindSpec | undefined {
    return this.#kinds.get(name);
  }

  /** The spec that serves kind `name` for accounts of `type`; undefined if the type has no such kind. */
  forAccount(type: string, name: string): CredentialKindSpec | undefined {
    return this.#byAccount.get(`${type}/${name}`);
  }

  /** The kind, which the caller has already validated. */
  spec(name: string): CredentialKindSpec {
    const kind = this.#kinds.get(name);
    if (!kind) throw new Error(`kind registry: no kind '${name}'`);
    return kind;
  }

  byProto(protoNumber: number): CredentialKindSpec | undefined {
    return this.#byProto.get(protoNumber);
  }

  kinds(): CredentialKindSpec[] {
    return [...this.#kinds.values()];
  }

  names(): string[] {
    return [...this.#kinds.keys()];
  }

  accountType(name: string): AccountTypeSpec | undefined {
    return this.#types.get(name);
  }

  accountTypeNames(): string[] {
    return [...this.#types.keys()];
  }

  /** The kinds an account of `type` can have at all, in registration order. */
  kindsOf(type: string): string[] {
    return this.#all.filter((k) => k.accountTypes.includes(type)).map((k) => k.name);
  }

  /**
   * Every metered endpoint, each once (kinds may share one): upstream paths
   * in registration order, then pseudo-endpoints such as "force_refresh".
   */
  /** The metered endpoints an account of `type` can call: its kinds' and its own. */
  quotaEndpointsOf(type: string): string[] {
    const own = this.#types.get(type)?.endpoints ?? [];
    const names = new Set(
      this.#all
        .filter((k) => k.accountTypes.includes(type))
        .flatMap((k) => k.endpoints.map((e) => e.name)),
    );
    for (const e of own) names.add(e.name);
    return this.quotaEndpoints()
      .map((e) => e.name)
      .filter((n) => names.has(n));
  }

  quotaEndpoints(): QuotaEndpointSpec[] {
    const all = new Map<string, QuotaEndpointSpec>();
    for (const k of this.#all) for (const e of k.endpoints) all.set(e.name, e);
    for (const t of this.#types.values()) for (const e of t.endpoints) all.set(e.name, e);
    const isPath = (e: QuotaEndpointSpec) => e.name.startsWith("/");
    return [...all.values()].sort((a, b) => Number(isPath(b)) - Number(isPath(a)));
  }
}
