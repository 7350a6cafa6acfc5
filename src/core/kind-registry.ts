import type { CredentialKindSpec, QuotaEndpointSpec } from "./kind.js";

/** An account type (official account, mini program, …) and the account-level endpoints it meters. */
export interface AccountTypeSpec {
  readonly name: string;
  /** How people read it in messages, e.g. "official account". */
  readonly label: string;
  /** Metered calls that belong to the account rather than a kind (e.g. clear_quota). */
  readonly endpoints: readonly QuotaEndpointSpec[];
}

/**
 * The registered account types and credential kinds. Built once from the
 * list in src/credentials/index.ts; everything that needs to know which
 * kinds exist (config, ACLs, the CLI, the RPC layer, quota endpoints, metric
 * labels) asks it.
 */
export class KindRegistry {
  readonly #kinds: ReadonlyMap<string, CredentialKindSpec>;
  readonly #byProto: ReadonlyMap<number, CredentialKindSpec>;
  readonly #types: ReadonlyMap<string, AccountTypeSpec>;

  constructor(types: readonly AccountTypeSpec[], kinds: readonly CredentialKindSpec[]) {
    this.#types = new Map(types.map((t) => [t.name, t]));
    this.#kinds = new Map(kinds.map((k) => [k.name, k]));
    this.#byProto = new Map(kinds.map((k) => [k.protoNumber, k]));
    if (this.#types.size !== types.length) throw new Error("kind registry: duplicate account type");
    if (this.#kinds.size !== kinds.length || this.#byProto.size !== kinds.length)
      throw new Error("kind registry: duplicate kind name or proto number");
    for (const k of kinds) {
      for (const t of k.accountTypes)
        if (!this.#types.has(t)) throw new Error(`kind ${k.name}: unknown account type ${t}`);
      const parent = k.dependsOn === undefined ? undefined : this.#kinds.get(k.dependsOn);
      if (k.dependsOn !== undefined && !parent)
        throw new Error(`kind ${k.name}: depends on unknown kind ${k.dependsOn}`);
      if (parent && !k.accountTypes.every((t) => parent.accountTypes.includes(t)))
        throw new Error(
          `kind ${k.name}: its parent ${parent.name} is missing on some account type`,
        );
    }
  }

  get(name: string): CredentialKindSpec | undefined {
    return this.#kinds.get(name);
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
    return this.kinds()
      .filter((k) => k.accountTypes.includes(type))
      .map((k) => k.name);
  }

  /**
   * Every metered endpoint, each once (kinds may share one): upstream paths
   * in registration order, then pseudo-endpoints such as "force_refresh".
   */
  quotaEndpoints(): QuotaEndpointSpec[] {
    const all = new Map<string, QuotaEndpointSpec>();
    for (const k of this.#kinds.values()) for (const e of k.endpoints) all.set(e.name, e);
    for (const t of this.#types.values()) for (const e of t.endpoints) all.set(e.name, e);
    const isPath = (e: QuotaEndpointSpec) => e.name.startsWith("/");
    return [...all.values()].sort((a, b) => Number(isPath(b)) - Number(isPath(a)));
  }
}
