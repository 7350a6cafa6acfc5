import type { HandlerContext } from "@connectrpc/connect";
import { ANONYMOUS_CLIENT, clientKey } from "../security/index.js";

/** The authenticated client behind a call, as the security wrapper recorded it. */
export function callerOf(ctx: HandlerContext): string {
  return ctx.values.get(clientKey) ?? ANONYMOUS_CLIENT;
}
