import { type EmulatorControl, EmulatorControlError } from "./control-types.js";
import type { OAuthUser } from "./oauth-codes.js";
import type { Grant } from "./oauth-grants.js";
import type { OAuthScope, OAuthTarget, OAuthUserSpec } from "./oauth-types.js";
import type { EmulatorState } from "./state.js";

const SCOPES: readonly OAuthScope[] = ["snsapi_base", "snsapi_userinfo"];

export type OAuthControl = Pick<
  EmulatorControl,
  | "authorizeUser"
  | "oauthGrants"
  | "expireRefreshToken"
  | "voidRefreshToken"
  | "changeUserPassword"
  | "oauthSettings"
  | "setOAuthSettings"
>;

/** The web OAuth part of the control surface (R33–R37, §12 C7). */
export function createOAuthControl(state: EmulatorState): OAuthControl {
  const { apps } = state;
  /** The grants `target` names; 404 when there are none. */
  const grantsOf = (appid: string, target: OAuthTarget): Grant[] => {
    apps.require(appid);
    const grants = state.oauthGrants.find(appid, checkTarget(target));
    if (grants.length === 0) throw new EmulatorControlError(404, "no grant matches");
    return grants;
  };
  return {
    authorizeUser(appid, spec) {
      apps.require(appid);
      const user = checkUser(spec);
      const now = state.now();
      const code = state.oauthCodes.mint(appid, user, now, state.oauthPolicy.codeTtlMs(appid));
      return {
        code: code.value,
        appid,
        openid: user.openid,
        scope: user.scope,
        issuedAt: code.issuedAt,
        expiresAt: code.expiresAt,
      };
    },
    oauthGrants(appid, openid) {
      apps.require(appid);
      const now = state.now();
      return state.oauthGrants
        .find(appid, checkTarget({ openid }))
        .map((g) => state.oauthGrants.describe(g, now));
    },
    expireRefreshToken(appid, target) {
      const grants = grantsOf(appid, target);
      for (const g of grants) state.oauthGrants.expire(g, state.now());
      return grants.length;
    },
    voidRefreshToken(appid, target) {
      const grants = grantsOf(appid, target);
      for (const g of grants) state.oauthGrants.voidRefresh(g, state.now(), 40030);
      return grants.length;
    },
    changeUserPassword(appid, openid) {
      const grants = grantsOf(appid, { openid });
      for (const g of grants) state.oauthGrants.voidRefresh(g, state.now(), 42007);
      return grants.length;
    },
    oauthSettings(appid) {
      apps.require(appid);
      return state.oauthPolicy.settings(appid);
    },
    setOAuthSettings(appid, patch) {
      apps.require(appid);
      if (typeof patch !== "object" || patch === null) {
        throw new EmulatorControlError(400, "settings must be an object");
      }
      state.oauthPolicy.set(appid, patch);
    },
  };
}

function checkUser(spec: OAuthUserSpec): OAuthUser {
  const bad = (message: string) => new EmulatorControlError(400, message);
  if (typeof spec !== "object" || spec === null) throw bad("user must be an object");
  if (typeof spec.openid !== "string" || spec.openid === "") {
    throw bad("openid must be a non-empty string");
  }
  if (!SCOPES.includes(spec.scope)) throw bad(`scope must be one of ${SCOPES.join(", ")}`);
  if (spec.unionid !== undefined && (typeof spec.unionid !== "string" || spec.unionid === "")) {
    throw bad("unionid must be a non-empty string");
  }
  if (spec.snapshot !== undefined && typeof spec.snapshot !== "boolean") {
    throw bad("snapshot must be a boolean");
  }
  return {
    openid: spec.openid,
    scope: spec.scope,
    unionid: spec.unionid,
    snapshot: spec.snapshot ?? false,
  };
}

function checkTarget(target: OAuthTarget): OAuthTarget {
  const given = (v: unknown) => typeof v === "string" && v !== "";
  const byOpenid = given(target?.openid);
  const byToken = given(target?.refreshToken);
  if (byOpenid === byToken) {
    throw new EmulatorControlError(400, "give exactly one of openid and refreshToken");
  }
  return byToken ? { refreshToken: target.refreshToken } : { openid: target.openid };
}
