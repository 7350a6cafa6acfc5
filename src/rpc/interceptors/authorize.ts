import { Code, type Interceptor } from "@connectrpc/connect";
import { KINDS } from "../../credentials/index.js";
import { namedApp } from "../../security/audit-values.js";
import type { RefusalLog } from "../../security/refusal-log.js";
import { ruleOf } from "./rules.js";
import { type Caller, callerOf, refuse } from "./scene.js";

/**
 * What the authenticated caller may do: the method's permission (GetToken
 * get, WatchToken watch, InvalidateToken invalidate, every AdminService
 * method and any unknown method admin), and the request's app_id and kind
 * must be the client's — else PERMISSION_DENIED, written to `refusals`.
 * Kinds this broker does not know are left to the handler, which rejects
 * them as INVALID_ARGUMENT.
 */
export function authorize(refusals: RefusalLog): Interceptor {
  const check = (caller: Caller, rule: ReturnType<typeof ruleOf>) => {
    const { client, app, kind } = caller;
    const who = `client '${client.id}'`;
    const deny = (message: string) =>
      refuse(refusals, "permission_denied", Code.PermissionDenied, message, caller, client.id);
    const { orPermission } = rule;
    const permission =
      orPermission !== undefined &&
      !client.permissions.has(rule.permission) &&
      client.permissions.has(orPermission)
        ? orPermission
        : rule.permission;
    if (!client.permissions.has(permission)) {
      const needed =
        orPermission === undefined ? `'${permission}'` : `'${permission}' or '${orPermission}'`;
      throw deny(`${who} does not have the ${needed} permission (needed for ${caller.method})`);
    }
    if (client.apps !== undefined) {
      // A client limited to some apps must name one: an empty app_id (GetStatus)
      // would show it every app.
      if (app === undefined || app === "") {
        throw deny(
          `${who} has '${permission}' permission only for its own apps and this request names none; set app_id`,
        );
      } else if (!client.apps.has(app)) {
        throw deny(
          `${who} does not have '${permission}' permission for ${namedApp(app)}; the broker's operator can add the app to the client's apps`,
        );
      }
    }
    // Users' credentials need the app in `userTokenApps` besides `apps`.
    if (
      kind !== undefined &&
      client.userTokenApps !== undefined &&
      KINDS.get(kind)?.subject === "openid" &&
      !client.userTokenApps.has(app ?? "")
    ) {
      throw deny(
        `${who} may not use users' credentials of ${namedApp(app ?? "")}; the broker's operator can add the app to the client's userTokenApps`,
      );
    }
    if (client.kinds !== undefined && kind !== undefined && !client.kinds.has(kind)) {
      throw deny(
        `${who} does not have '${permission}' permission for kind ${kind} of ${namedApp(app ?? "")} (its kinds: ${[...client.kinds].join(", ")})`,
      );
    }
  };

  return (next) => (req) => {
    try {
      check(callerOf(req), ruleOf(req.method));
    } catch (err) {
      return Promise.reject(err);
    }
    return next(req);
  };
}
