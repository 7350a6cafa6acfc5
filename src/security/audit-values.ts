import { APP_ID_PATTERN } from "../core/credential.js";
import { fingerprint } from "../shared/fingerprint.js";

/**
 * Request fields as audit lines and refusal messages may carry them. A
 * caller controls these bytes: unchecked, one request could write 60 KB of
 * audit, or a token pasted into the wrong field would be stored whole.
 */

/**
 * A valid app id as it is; anything else (60 KB of junk, a token sent as
 * app_id) only by its length and fingerprint, which still lets an operator
 * match repeats. Valid ids are at most 64 characters, shorter than any token.
 */
export function auditedApp(app: string): string {
  return app === "" || APP_ID_PATTERN.test(app) ? app : `(invalid app_id: ${describeJunk(app)})`;
}

/** For refusal messages: `app 'shop'`, or what the invalid app_id was. */
export function namedApp(app: string): string {
  if (app === "") return "an empty app_id";
  return APP_ID_PATTERN.test(app) ? `app '${app}'` : `an invalid app_id (${describeJunk(app)})`;
}

/**
 * Runs of 32 or more characters of the base64/hex alphabet: every WeChat
 * token and ticket, an AppSecret (32 hex digits), an API key. Words of a
 * human sentence are far shorter.
 */
const TOKEN_SHAPED = /[A-Za-z0-9_\-+/=]{32,}/g;

/**
 * Free text from an operator (a ForceRefresh reason) for the audit log: every
 * token-shaped run replaced by its length and fingerprint (the same
 * fingerprint GetStatus shows for a credential), so a token pasted by
 * mistake is recognisable but never stored.
 */
export function auditedText(text: string): string {
  return text.replace(TOKEN_SHAPED, (run) => `[masked: ${describeJunk(run)}]`);
}

function describeJunk(text: string): string {
  return `${text.length} chars, fingerprint ${fingerprint(text)}`;
}
