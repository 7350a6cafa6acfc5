import { createHmac, timingSafeEqual } from "node:crypto";
import type { AppConfig } from "../token/app.js";

/** What a refresh handle stands for: a user's grant, and the client that exchanged the code. */
export interface HandleClaims {
  readonly openid: string;
  readonly scope: string;
  /** The client the code exchange ran as (a configured client, or the AppSecret holder). */
  readonly client: string;
}

const PREFIX = "tbrh1.";
const MAX_HANDLE_CHARS = 1024;

/**
 * The `refresh_token` the façade hands to SDKs in place of WeChat's, which
 * never leaves the broker: `tbrh1.<claims>.<mac>`, the claims (openid,
 * scope, client id) in base64url and an HMAC-SHA256 over them with a key
 * derived from the app's AppSecret. Every replica can check it without
 * shared state; it names the user's grant, not a version of it, so it keeps
 * working as long as the broker holds the grant (30 days from the
 * authorization), and stops when the grant is forgotten or void, or when
 * the app's secret is changed. Like a refresh token it is a bearer
 * credential: never logged.
 */
export function issueHandle(app: AppConfig, claims: HandleClaims): string {
  const body = Buffer.from(
    JSON.stringify([claims.openid, claims.scope, claims.client]),
    "utf8",
  ).toString("base64url");
  return `${PREFIX}${body}.${mac(app, body).toString("base64url")}`;
}

/** The claims of a handle this app's key made, or undefined for anything else. */
export function readHandle(app: AppConfig, handle: string): HandleClaims | undefined {
  if (handle.length > MAX_HANDLE_CHARS || !handle.startsWith(PREFIX)) return undefined;
  const [body, tag, extra] = handle.slice(PREFIX.length).split(".");
  if (body === undefined || tag === undefined || extra !== undefined) return undefined;
  const given = Buffer.from(tag, "base64url");
  const expected = mac(app, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    if (!Array.isArray(parsed) || parsed.length !== 3) return undefined;
    const [openid, scope, client] = parsed as unknown[];
    if (typeof openid !== "string" || typeof scope !== "string" || typeof client !== "string")
      return undefined;
    return { openid, scope, client };
  } catch {
    return undefined;
  }
}

function mac(app: AppConfig, body: string): Buffer {
  // A key of its own per app, derived from the secret: the secret itself signs nothing.
  const key = createHmac("sha256", app.secret.reveal())
    .update(`token-broker facade refresh handle\0${app.id}`)
    .digest();
  return createHmac("sha256", key).update(body).digest();
}
