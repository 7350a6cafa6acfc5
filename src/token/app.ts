import type { CredentialKey, CredentialKind } from "../core/credential.js";
import { SUBJECT_PATTERN } from "../core/credential.js";
import type { CredentialKindSpec } from "../core/kind.js";
import type { KindRegistry } from "../core/kind-registry.js";
import { KINDS } from "../credentials/index.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  UnknownAppError,
} from "../shared/errors.js";
import type { Secret } from "../shared/secret.js";
import type { TokenMode } from "./refresh-policy.js";

export { APP_ID_PATTERN } from "../core/credential.js";

/** The registered account types (src/credentials/index.ts). */
export const APP_TYPES: readonly string[] = KINDS.accountTypeNames();
export type AppType = string;

/** One account the broker manages (a WeChat app). */
export interface AppConfig {
  /** The broker's id for the app, used by clients (e.g. "shop"). */
  readonly id: string;
  readonly type: AppType;
  /** WeChat's appid (wx…). */
  readonly appid: string;
  /** A WeCom app's AgentId (type wecom; absent for corp-level secrets). */
  readonly agentid?: string;
  readonly secret: Secret;
  /** Which endpoint issues the access token: /cgi-bin/token or /cgi-bin/stable_token. */
  readonly tokenMode: TokenMode;
  /** Fetch the access token at start-up instead of on the first request. */
  readonly prefetch: boolean;
  /**
   * The kinds this app offers clients; default: every kind of its type. Not
   * every official account has WeChat's card permission (48001 otherwise).
   */
  readonly kinds?: readonly CredentialKind[];
}

/** The kinds an app of `type` can have at all. */
export function kindsOfType(type: AppType, kinds: KindRegistry = KINDS): readonly CredentialKind[] {
  return kinds.kindsOf(type);
}

/** The configured apps, looked up by the broker's app id. */
export class AppRegistry {
  #apps: ReadonlyMap<string, AppConfig>;

  constructor(
    apps: readonly AppConfig[],
    readonly kinds: KindRegistry = KINDS,
  ) {
    this.#apps = new Map(apps.map((a) => [a.id, a]));
  }

  all(): AppConfig[] {
    return [...this.#apps.values()];
  }

  /** The app if configured (no kind checks). */
  find(appId: string): AppConfig | undefined {
    return this.#apps.get(appId);
  }

  /** Replaces the configured apps (a config reload; config-changes.ts says what changed). */
  replace(apps: readonly AppConfig[]): void {
    this.#apps = new Map(apps.map((a) => [a.id, a]));
  }

  /** The app, checked to have `kind`; throws the error a caller should see otherwise. */
  resolve(appId: string, kind: CredentialKind): AppConfig {
    return this.resolveKind(appId, kind).app;
  }

  /** The app and kind spec of `key`, with its subject checked against the kind. */
  resolveKey(key: CredentialKey): { app: AppConfig; spec: CredentialKindSpec } {
    const resolved = this.resolveKind(key.appId, key.kind);
    checkSubject(resolved.spec, key);
    return resolved;
  }

  resolveKind(appId: string, kind: CredentialKind): { app: AppConfig; spec: CredentialKindSpec } {
    const app = this.#apps.get(appId);
    if (!app) throw new UnknownAppError(appId);
    const spec = this.kinds.forAccount(app.type, kind);
    // GetToken's hot path: no list is built unless the request is refused.
    if (!spec) {
      const label = this.kinds.accountType(app.type)?.label ?? app.type;
      const offered = this.kinds.kindsOf(app.type);
      throw new InvalidArgumentError(
        `app '${appId}' is a ${label}, which has no ${kind}; it has: ${offered.join(", ")}`,
      );
    }
    if (app.kinds && !app.kinds.includes(kind)) {
      throw new FailedPreconditionError(
        `app '${appId}' does not offer ${kind}: the broker's config lists only ${app.kinds.join(", ")} ` +
          `in apps[].kinds. If the account has WeChat's permission for it, add ${kind} there`,
      );
    }
    return { app, spec };
  }
}

function checkSubject(spec: CredentialKindSpec, key: CredentialKey): void {
  if (spec.subject === "none") {
    if (key.subject !== undefined)
      throw new InvalidArgumentError(
        `subject must be empty for ${spec.name}: it is one credential per app, not per user or tenant`,
      );
    return;
  }
  const what = spec.subject === "openid" ? "the user's openid" : "the authorizer's appid";
  if (key.subject === undefined)
    throw new InvalidArgumentError(`subject is required for ${spec.name}: set it to ${what}`);
  if (!SUBJECT_PATTERN.test(key.subject))
    throw new InvalidArgumentError(`subject must be ${what}: 1-128 letters, digits, '_' or '-'`);
}
