import {
  FailedPreconditionError,
  InvalidArgumentError,
  UnknownAppError,
} from "../shared/errors.js";
import type { Secret } from "../shared/secret.js";
import type { CredentialKind } from "./credential.js";
import type { TokenMode } from "./refresh-policy.js";

/** App ids: letters, digits, ".", "_" or "-" (no "/", which separates keys), at most 64. */
export const APP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const APP_TYPES = ["official_account", "mini_program"] as const;
export type AppType = (typeof APP_TYPES)[number];

/** One WeChat app the broker manages. */
export interface AppConfig {
  /** The broker's id for the app, used by clients (e.g. "shop"). */
  readonly id: string;
  readonly type: AppType;
  /** WeChat's appid (wx…). */
  readonly appid: string;
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

/** Which kinds each app type has: mini programs have no JS-SDK or card tickets. */
const KINDS_BY_TYPE: Readonly<Record<AppType, readonly CredentialKind[]>> = {
  official_account: ["access_token", "jsapi_ticket", "wx_card_ticket"],
  mini_program: ["access_token"],
};

/** The kinds an app of `type` can have at all. */
export function kindsOfType(type: AppType): readonly CredentialKind[] {
  return KINDS_BY_TYPE[type];
}

/** The configured apps, looked up by the broker's app id. */
export class AppRegistry {
  readonly #apps: ReadonlyMap<string, AppConfig>;

  constructor(apps: readonly AppConfig[]) {
    this.#apps = new Map(apps.map((a) => [a.id, a]));
  }

  all(): AppConfig[] {
    return [...this.#apps.values()];
  }

  /** The app, checked to have `kind`; throws the error a caller should see otherwise. */
  resolve(appId: string, kind: CredentialKind): AppConfig {
    const app = this.#apps.get(appId);
    if (!app) throw new UnknownAppError(appId);
    const kinds = KINDS_BY_TYPE[app.type];
    if (!kinds.includes(kind)) {
      throw new InvalidArgumentError(
        `app '${appId}' is a ${app.type.replace("_", " ")}, which has no ${kind}; it has: ${kinds.join(", ")}`,
      );
    }
    if (app.kinds && !app.kinds.includes(kind)) {
      throw new FailedPreconditionError(
        `app '${appId}' does not offer ${kind}: the broker's config lists only ${app.kinds.join(", ")} ` +
          `in apps[].kinds. If the account has WeChat's permission for it, add ${kind} there`,
      );
    }
    return app;
  }
}
