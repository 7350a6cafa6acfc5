import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { WecomOptions } from "./wecom-types.js";

/**
 * Account types with different defaults: classic token quota (R5), and for
 * web OAuth the code life (600 s for `website_app`, R33) and refresh token
 * life (180 days for `mobile_app`, R35, §12 C7).
 */
export type AppType =
  | "official_account"
  | "mini_program"
  | "test_account"
  | "website_app"
  | "mobile_app";

/** An account the emulator knows. */
export interface EmulatorApp {
  appid: string;
  secret: string;
  /** Default "official_account" (2000 classic tokens a day). */
  type?: AppType;
  /** A third-party platform appid: `/cgi-bin/token` answers 61024 (R4, R42). */
  component?: boolean;
}

/**
 * The metered APIs, as accepted by `setDailyLimit`, `openapi/quota/get` and
 * `openapi/quota/clear`. `"/cgi-bin/stable_token#force"` is the emulator's
 * name for the 20-a-day `force_refresh` allowance (R18); it is not a cgi_path.
 */
export type MeteredPath =
  | "/cgi-bin/token"
  | "/cgi-bin/stable_token"
  | "/cgi-bin/stable_token#force"
  | "/cgi-bin/ticket/getticket"
  | "/cgi-bin/getcallbackip"
  | "/cgi-bin/get_api_domain_ip";

/** A daily or per-minute allowance; `null` means unmetered. */
export type Limit = number | null;

/**
 * Web OAuth defaults for every account (R33–R37). Per-account overrides are
 * set with `setOAuthSettings`; unset values fall back to the account type.
 */
export interface OAuthOptions {
  /** Life of an unused code: default 300 s, 600 s for `website_app` (R33). */
  codeTtlSeconds?: number;
  /** Errcode for a code past its life: 40029 (default) or legacy 42003 (R33). */
  expiredCodeErrcode?: 40029 | 42003;
  /** Life of a refresh token: default 30 days, 180 days for `mobile_app` (R35, C7). */
  refreshTokenTtlSeconds?: number;
  /** `expires_in` of user access tokens, default 7200 (R34). */
  accessTokenLifetimeSeconds?: number;
  /** Calls per minute per account and `/sns/oauth2/*` endpoint, default 50000 (R37). */
  minuteLimit?: Limit;
}

export interface EmulatorOptions {
  /**
   * Time source, default `systemClock`. It is wrapped in an offset clock so
   * `POST /_emulator/clock/advance` works on top of it.
   */
  clock?: Clock;
  /** Accounts known at start and after `reset()`. */
  apps?: EmulatorApp[];
  /** `expires_in` of new access tokens, default 7200 (R6). */
  tokenLifetimeSeconds?: number;
  /** How long a superseded token keeps working, default 300 (R7, R15, R16). */
  graceSeconds?: number;
  /** Lifetime and `expires_in` of jsapi / wx_card tickets, default 7200 (R19). */
  ticketLifetimeSeconds?: number;
  /** Errcode for a wrong secret: 40125 (default, observed today) or legacy 40001 (R4). */
  wrongSecretErrcode?: 40125 | 40001;
  /**
   * Whether failed calls of an identified account use daily / minute quota
   * (R5, emulator choice). Default false: only successful calls count. When
   * true, every failure after the appid is known counts except the quota
   * rejections (45009 / 45011) themselves and injected faults (R43).
   */
  countFailedCalls?: boolean;
  logger?: Logger;
  /**
   * UTC offset of the quota day, in minutes. Default 480: daily counters
   * reset at 00:00 Asia/Shanghai = 16:00 UTC, monthly ones on the 1st (R27).
   */
  utcOffsetMinutes?: number;
  /**
   * Overrides of the default daily limits for every account. Defaults:
   * `/cgi-bin/token` 2000 (10000 for mini_program, 200 for test_account);
   * `/cgi-bin/stable_token` 500000; its force allowance 20;
   * `/cgi-bin/get_api_domain_ip` 1000 (unconfirmed); getticket and
   * getcallbackip unmetered because their quota is unpublished (R21, R22).
   */
  dailyLimits?: Partial<Record<MeteredPath, Limit>>;
  /**
   * Overrides of the default per-minute limits. Default: stable_token 10000
   * (R18); everything else unmetered, since no threshold is published (R5).
   */
  minuteLimits?: Partial<Record<MeteredPath, Limit>>;
  /**
   * Period of the 50-clear allowance of `openapi/quota/clear` (R26). The docs
   * disagree between a month and a day; default "month".
   */
  apiQuotaClearPeriod?: "month" | "day";
  /**
   * Whether a `force_refresh` call made less than 30 s after the last
   * rotating one (which does not rotate) still uses one of the 20 daily
   * force calls (R17, emulator choice). Default true.
   */
  countForceWithinGap?: boolean;
  /**
   * Errcode for an access_token that could never have been issued (wrong
   * shape). Default 40001, like any unknown token; 40014 is optional (R10).
   */
  malformedTokenErrcode?: 40001 | 40014;
  /** Errcode for a missing or unknown getticket `type` (R21). Default 40097 "invalid args". */
  unknownTicketTypeErrcode?: number;
  /** Random source for fault probabilities, default `Math.random`. */
  random?: () => number;
  /** Web OAuth (`/sns/*`) defaults (R33–R37). */
  oauth?: OAuthOptions;
  /** WeCom corps, apps, lifetimes and limits (R28–R32). Corps are apart from `apps`. */
  wecom?: WecomOptions;
}
