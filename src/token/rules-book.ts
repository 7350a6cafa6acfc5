import type { CredentialKey } from "../core/credential.js";
import type { AppConfig, AppRegistry } from "./app.js";
import { CredentialRules, type RefreshPolicy } from "./refresh-policy.js";

export interface Resolved {
  readonly app: AppConfig;
  readonly rules: CredentialRules;
}

/**
 * Resolves a credential key to its app and rules, checking the app, kind and
 * subject (throws the error a caller should see). Rules are built once per
 * configured app object and kind, so GetToken's warm path is map lookups.
 */
export class RulesBook {
  readonly #cache = new WeakMap<AppConfig, Map<string, CredentialRules>>();

  constructor(
    readonly apps: AppRegistry,
    private readonly policy: RefreshPolicy,
  ) {}

  resolve(key: CredentialKey): Resolved {
    const { app, spec } = this.apps.resolveKey(key);
    let byKind = this.#cache.get(app);
    if (!byKind) {
      byKind = new Map();
      this.#cache.set(app, byKind);
    }
    let rules = byKind.get(spec.name);
    if (!rules) {
      rules = new CredentialRules(spec, app, this.policy);
      byKind.set(spec.name, rules);
    }
    return { app, rules };
  }

  /** Like resolve, or undefined for a key no longer configured (a removed app or kind). */
  find(key: CredentialKey): Resolved | undefined {
    try {
      return this.resolve(key);
    } catch {
      return undefined;
    }
  }
}
