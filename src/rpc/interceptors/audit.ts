import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "../../shared/logger.js";
import { codeName, onStreamEnd } from "./outcome.js";
import { ruleOf } from "./rules.js";
import { auditFields, type Caller, callerOf } from "./scene.js";

/**
 * One audit line per admin call (every method needing the admin permission),
 * once it has ended: who, from where, on which app, and the outcome. Calls
 * refused earlier in the chain are the refusal log's.
 */
export function auditAdminCalls(audit: Logger): Interceptor {
  const write = (caller: Caller, err: unknown) =>
    audit.info(
      { ...auditFields("admin_call", caller, caller.client.id), outcome: codeName(err) },
      `security: admin call ${caller.method}`,
    );
  return (next) => (req) => {
    if (ruleOf(req.method).permission !== "admin") return next(req);
    let caller: Caller;
    try {
      caller = callerOf(req);
    } catch (err) {
      return Promise.reject(err);
    }
    return next(req).then(
      (res) => {
        if (res.stream) return onStreamEnd(res, () => (outcome) => write(caller, outcome));
        write(caller, undefined);
        return res;
      },
      (err: unknown) => {
        write(caller, err);
        throw err;
      },
    );
  };
}
