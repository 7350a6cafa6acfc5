import { z } from "zod";
import type { CredentialKind } from "../../core/credential.js";
import { bool, list, oneOf, strictMapping, text } from "../../shared/schema.js";
import { APP_ID_PATTERN, kindsOfType } from "../../token/app.js";
import { appSecret, type ConfigEnvironment } from "./secret.js";

/** The broker's id for an app, used by clients (e.g. "shop"). */
export const appId = () =>
  text().regex(
    APP_ID_PATTERN,
    "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/**
 * apps[].kinds: which of its type's kinds an app offers (default: all of
 * them). Not every official account has WeChat's card permission.
 */
export function offeredKinds(type: string, base: CredentialKind) {
  return list(z.unknown())
    .superRefine((kinds, ctx) => {
      const offered = kindsOfType(type);
      kinds.forEach((kind, index) => {
        if (!offered.includes(kind as CredentialKind))
          ctx.addIssue({
            code: "custom",
            path: [index],
            message: `a ${type} offers ${offered.join(", ")}`,
          });
      });
      if (!kinds.includes(base))
        ctx.addIssue({
          code: "custom",
          message: `must include ${base} (the other kinds are fetched with it)`,
        });
    })
    .transform((kinds) => [...new Set(kinds as CredentialKind[])]);
}

/**
 * The keys every WeChat app has (an official account, a mini program): its
 * appid and AppSecret, and how its access token is fetched.
 */
export function wechatApp<const T extends string>(type: T, environment: ConfigEnvironment) {
  return strictMapping({
    id: appId(),
    type: z.literal(type),
    /** WeChat's appid (wx…). */
    appid: text(),
    secret: appSecret(environment),
    /** Which endpoint issues the access token: /cgi-bin/token or /cgi-bin/stable_token. */
    tokenMode: oneOf(["classic", "stable"]).prefault("classic"),
    /** Fetch the access token at start-up instead of on the first request. */
    prefetch: bool().prefault(true),
    kinds: offeredKinds(type, "access_token").optional(),
  });
}
