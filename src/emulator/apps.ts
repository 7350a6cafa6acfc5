import type { AccountFlags, AppInfo, AppPatch, RiskState } from "./control-types.js";
import { EmulatorControlError } from "./control-types.js";
import { recordLeakCandidate } from "./leak-record.js";
import type { AppType, EmulatorApp } from "./types.js";

const APP_TYPES: readonly AppType[] = [
  "official_account",
  "mini_program",
  "test_account",
  "website_app",
  "mobile_app",
];

/** The emulator's mutable view of one account. */
export interface AppState {
  readonly appid: string;
  secret: string;
  type: AppType;
  component: boolean;
  secretFrozen: boolean;
  flags: AccountFlags;
  /** `null`: no whitelist, every caller is allowed. */
  ipWhitelist: string[] | null;
  risk: RiskState;
}

/** Known accounts by appid. */
export class AppRegistry {
  readonly #apps = new Map<string, AppState>();

  add(app: EmulatorApp): AppState {
    if (typeof app.appid !== "string" || app.appid === "") {
      throw new EmulatorControlError(400, "appid must be a non-empty string");
    }
    if (typeof app.secret !== "string" || app.secret === "") {
      throw new EmulatorControlError(400, "secret must be a non-empty string");
    }
    if (app.type !== undefined && !APP_TYPES.includes(app.type)) {
      throw new EmulatorControlError(400, `type must be one of ${APP_TYPES.join(", ")}`);
    }
    if (this.#apps.has(app.appid)) {
      throw new EmulatorControlError(409, `app ${app.appid} already exists`);
    }
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("secret", app.secret);
    const state: AppState = {
      appid: app.appid,
      secret: app.secret,
      type: app.type ?? "official_account",
      component: app.component ?? false,
      secretFrozen: false,
      flags: { tokenForbidden: false, accountFrozen: false },
      ipWhitelist: null,
      risk: "none",
    };
    this.#apps.set(app.appid, state);
    return state;
  }

  get(appid: string): AppState | undefined {
    return this.#apps.get(appid);
  }

  /** Like `get`, but an unknown appid is a 404 control error. */
  require(appid: string): AppState {
    const app = this.#apps.get(appid);
    if (!app) throw new EmulatorControlError(404, `unknown app ${appid}`);
    return app;
  }

  update(appid: string, patch: AppPatch): void {
    const app = this.require(appid);
    if (patch.type !== undefined && !APP_TYPES.includes(patch.type)) {
      throw new EmulatorControlError(400, `type must be one of ${APP_TYPES.join(", ")}`);
    }
    if (patch.type !== undefined) app.type = patch.type;
    if (patch.component !== undefined) app.component = patch.component;
  }

  remove(appid: string): void {
    this.require(appid);
    this.#apps.delete(appid);
  }

  typeOf(appid: string): AppType {
    return this.#apps.get(appid)?.type ?? "official_account";
  }

  list(): AppInfo[] {
    return [...this.#apps.values()].map((app) => ({
      appid: app.appid,
      type: app.type,
      component: app.component,
      secretFrozen: app.secretFrozen,
      flags: { ...app.flags },
      ipWhitelist: app.ipWhitelist ? [...app.ipWhitelist] : null,
      risk: app.risk,
    }));
  }

  clear(): void {
    this.#apps.clear();
  }
}
