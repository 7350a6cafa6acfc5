import type { AppState } from "./apps.js";
import { notInWhitelistMessage } from "./errors.js";
import type { EmulatorState } from "./state.js";

export interface CredentialParams {
  readonly grantType: string | undefined;
  readonly appid: string | undefined;
  readonly secret: string | undefined;
  readonly ip: string;
}

export type CredentialCheck =
  | { readonly ok: true; readonly app: AppState }
  | {
      readonly ok: false;
      readonly errcode: number;
      readonly errmsg?: string;
      /** The account, when the appid named a known one (for `countFailedCalls`). */
      readonly app: AppState | undefined;
    };

/**
 * The parameter and account checks of `/cgi-bin/token` and
 * `/cgi-bin/stable_token`, in the order of R4:
 * IP whitelist (40164) → grant_type (40002) → appid missing (41002) →
 * secret missing (41004) → unknown appid (40013) → component appid (61024) →
 * wrong secret (40125 or 40001) → frozen secret (40243) → token APIs
 * forbidden (50004) → account frozen (50007) → IP risk flow (89503, then
 * 89501; 89507; 89506). The whitelist can only apply when the appid names a
 * known account, since the whitelist belongs to the account.
 */
export function checkCredentials(state: EmulatorState, p: CredentialParams): CredentialCheck {
  const app = p.appid === undefined ? undefined : state.apps.get(p.appid);
  const reject = (errcode: number, errmsg?: string): CredentialCheck =>
    errmsg === undefined ? { ok: false, errcode, app } : { ok: false, errcode, errmsg, app };

  if (app?.ipWhitelist && !app.ipWhitelist.includes(p.ip)) {
    return reject(40164, notInWhitelistMessage(p.ip));
  }
  if (p.grantType !== "client_credential") return reject(40002);
  if (p.appid === undefined) return reject(41002);
  if (p.secret === undefined) return reject(41004);
  if (!app) return reject(40013);
  if (app.component) return reject(61024);
  if (p.secret !== app.secret) return reject(state.config.wrongSecretErrcode);
  if (app.secretFrozen) return reject(40243);
  if (app.flags.tokenForbidden) return reject(50004);
  if (app.flags.accountFrozen) return reject(50007);
  switch (app.risk) {
    case "confirm_required":
      app.risk = "pending";
      return reject(89503);
    case "pending":
      return reject(89501);
    case "rejected":
      return reject(89507);
    case "blocked":
      return reject(89506);
    case "none":
      return { ok: true, app };
  }
}
