import type { HandlerContext } from "@connectrpc/connect";
import { ANONYMOUS_CLIENT, clientKey, permissionsKey } from "../security/index.js";

/** The authenticated client behind a call, as the security wrapper recorded it. */
export function callerOf(ctx: HandlerContext): string {
  return ctx.values.get(clientKey) ?? ANONYMOUS_CLIENT;
}

/** Whether the caller may read token values (GetToken or WatchToken); true when not wrapped. */
export function mayReadTokens(ctx: HandlerContext): boolean {
  const permissions = ctx.values.get(permissionsKey);
  return permissions === undefined || permissions.has("get") || permissions.has("watch");
}
