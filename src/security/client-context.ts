import { createContextKey } from "@connectrpc/connect";
import type { CompiledClient, Permission } from "./policy.js";

/**
 * Context value with the id of the client a call was authenticated as
 * (`ctx.values.get(clientKey)`), set by the authenticate interceptor before
 * the handler runs: a configured client's id, or "anonymous" when no clients
 * are configured. `undefined` in a handler served without that interceptor.
 */
export const clientKey = createContextKey<string | undefined>(undefined, {
  description: "authenticated client id",
});

/**
 * Context value with the permissions of the authenticated client, set with
 * `clientKey`; `undefined` in a handler served without the authenticate
 * interceptor (then nothing restricts it).
 */
export const permissionsKey = createContextKey<ReadonlySet<Permission> | undefined>(undefined, {
  description: "authenticated client's permissions",
});

/**
 * Context value set by an in-process front end that authenticates callers
 * its own way (the WeChat-compatible façade: an app's AppSecret, its access
 * token, a refresh handle). The authenticate interceptor calls it after the
 * address check instead of reading the authorization header; it returns the
 * client, or the message to refuse the call with (UNAUTHENTICATED). Never
 * set from the wire: context values are built by server code only.
 */
export const identifyCallerKey = createContextKey<(() => CompiledClient | string) | undefined>(
  undefined,
  { description: "caller identified by an in-process front end" },
);
