/**
 * The project's emulator of WeChat's credential HTTP API: the upstream for
 * the broker's tests, demo mode and benchmarks. It follows the numbered rules
 * of the shared WeChat API facts (§11, R1–R37 and R43–R44, with the
 * corrections C1, C7 and C10).
 *
 * Served: GET /cgi-bin/token, POST /cgi-bin/stable_token,
 * GET /cgi-bin/ticket/getticket, GET /cgi-bin/getcallbackip,
 * GET /cgi-bin/get_api_domain_ip, POST /cgi-bin/openapi/quota/get,
 * POST /cgi-bin/openapi/quota/clear, POST /cgi-bin/clear_quota,
 * POST /cgi-bin/clear_quota/v2, GET /sns/oauth2/access_token,
 * GET /sns/oauth2/refresh_token, GET /sns/auth, and WeCom's
 * GET /cgi-bin/gettoken, GET /cgi-bin/get_jsapi_ticket,
 * GET /cgi-bin/ticket/get?type=agent_config and GET /cgi-bin/agent/get
 * (WeCom's host; the paths do not collide). Control plane under
 * /_emulator/ (see control-routes.ts for the endpoint table).
 *
 * Emulator choices where WeChat's behaviour is undocumented (defaults; most
 * are options of `createEmulator`):
 * - Validity is half-open: a token works while now < its end and fails at
 *   exactly issue + expires_in (42001) or superseding + graceSeconds (40001).
 * - Two-slot model: only the current token and one grace token ever work (R8).
 * - A token superseded before it expired stays 40001 after its expiry too;
 *   one whose expiry came first gets 42001 (R9).
 * - Never-issued tokens get 40001; `malformedTokenErrcode: 40014` is optional (R10).
 * - A wrong secret gets 40125 (`wrongSecretErrcode: 40001` for legacy) (R4).
 * - The whitelist (40164) is checked first but only when the appid names a
 *   known account; a secret freeze, flags and risk states apply at once.
 * - Only successful calls use quota (`countFailedCalls`) (R5); injected
 *   faults never do (R43).
 * - Stable tokens rotate in normal mode once ≤ graceSeconds remain (R15), so
 *   a lifetime shorter than graceSeconds rotates on every call.
 * - A force call < 30 s after the last rotating one returns the current token
 *   and still uses a force call (`countForceWithinGap`) (R17).
 * - Missing or unknown getticket `type` → 40097 "invalid args" (R21).
 * - getticket and getcallbackip have no daily limit by default (unpublished;
 *   set one with the limits hook), but every successful call is counted:
 *   quota/get reports `used` with daily_limit 2147483647. get_api_domain_ip:
 *   1000 a day (R22).
 * - clear_quota/v2 reads appid and appsecret from the URL only (§12 C1):
 *   a body-only request gets 41002.
 * - openapi/quota/clear: 50 a month (`apiQuotaClearPeriod: "day"`) (R26);
 *   clearing stable_token also restores its force allowance.
 * - Quota days start at 00:00 UTC+8 (`utcOffsetMinutes`), months on the 1st;
 *   minute limits use calendar minutes (R27). Daily beats minute (45009 first).
 * - Unknown API paths: HTTP 200 `40066 invalid url`. Wrong method: 43001 on
 *   GET APIs, 43002 on POST APIs. A body that is not a JSON object: 47001.
 * - errmsg ends with ` rid: <hex unix seconds>-<8 hex>-<8 hex>`.
 * - Latency and hang faults use real time; everything else reads the
 *   injected clock lazily, and nothing is scheduled on it. *
 * Web OAuth (R33–R37, C7), emulator choices (most are `oauth` options or
 * per-account `setOAuthSettings`):
 * - Codes exist only when a test plays "the user authorizes"
 *   (`authorizeUser`). Their life: 300 s, 600 s for `website_app`. A code
 *   past its life gets 40029 (`expiredCodeErrcode: 42003`) even if it was
 *   used; a used live code gets 40163. A rejected call leaves it unused.
 * - Refresh tokens live 30 days, 180 for `mobile_app`; never extended.
 * - Each exchange starts an independent grant; a second authorization does
 *   not end the first. A secret reset leaves grants alone; removing the
 *   account kills them.
 * - Check order on /sns/oauth2/*: grant_type 40002 → 41002 → 41004 (exchange)
 *   → 40013 → 45011 → wrong secret 40125 (or 40001) → 40243 → 41008 / 41003
 *   → the code or refresh token. No IP whitelist, account flags or risk flow.
 * - 45011: more than 50,000 calls in a calendar minute per account and
 *   endpoint (each API page states its own limit); every call that reaches
 *   the check counts, failures included (C5). No daily quota; /sns/auth is
 *   unmetered.
 * - /sns/auth: the token's state first (40001 unknown or voided, 42001
 *   expired), then the openid (40003, also when missing). Basic tokens are
 *   unknown there, and user tokens are unknown to the /cgi-bin APIs.
 * - A voided refresh token (hook) leaves its access token working; a
 *   password change voids both (42007 on refresh, 40001 on /sns/auth).
 * - `website_app` and `mobile_app` accounts get the official-account classic
 *   token quota (2000 a day) if they call /cgi-bin/token.
 *
 * WeCom (R28–R32, C10), emulator choices (`wecom` options or control calls):
 * - Corps and apps are apart from official accounts. Tokens are per
 *   (corp, app secret) and the same token comes back while it works;
 *   `expires_in` is the remaining seconds (`expiresIn: "full"` for 7200).
 * - WeCom errors are `{errcode, errmsg}` with errmsg shaped like WeCom's:
 *   "<text>, hint: [...], from ip: <caller>, more info at …?e=<errcode>".
 * - gettoken order: 41002 → 41004 → 40013 → failures block → frequency
 *   limit → 40091 (another corp's secret) / 40001 → 50003 → 60020.
 *   Token APIs: 41001 → 40014 (unknown, official-account tokens included)
 *   → frequency limit → 40014 (killed) / 42001 → 50003 → 60020 → 48002.
 * - A token of another app: agent/get → 301002; the agent ticket is always
 *   the token's own app's; corp-level tokens get 48002 for agent_config;
 *   ticket/get with another `type` → 40058.
 * - Limits use clock minutes and hours; blocks last 60 s / 60 min from the
 *   call that went over; blocked calls count nowhere. Ticket allowances
 *   (400/corp, 100/app an hour, both kinds together) reject without a block.
 *   The 2000th failed gettoken of a corp in a clock hour blocks its
 *   gettoken for 1 h (`failedGettokenPerHour: null` turns it off).
 * - A new secret, removing an app or a corp kills its tokens (40014).
 */

export type {
  AccountFlags,
  AppInfo,
  AppPatch,
  CounterSnapshot,
  EmulatorControl,
  EndpointCounter,
  FaultAction,
  FaultInfo,
  FaultSpec,
  LiveToken,
  QuotaEntry,
  QuotaSnapshot,
  RiskState,
  TokenCheck,
  TokenKind,
} from "./control-types.js";
export { EmulatorControlError } from "./control-types.js";
export { createEmulator, type Emulator } from "./emulator.js";
export type {
  OAuthCodeInfo,
  OAuthGrantInfo,
  OAuthScope,
  OAuthSettings,
  OAuthSettingsPatch,
  OAuthTarget,
  OAuthUserSpec,
} from "./oauth-types.js";
export type {
  AppType,
  EmulatorApp,
  EmulatorOptions,
  Limit,
  MeteredPath,
  OAuthOptions,
} from "./types.js";
export type {
  WecomAppInfo,
  WecomAppPatch,
  WecomAppSpec,
  WecomControl,
  WecomCorpSpec,
  WecomLimits,
  WecomOptions,
  WecomTicketInfo,
  WecomTokenInfo,
} from "./wecom-types.js";
