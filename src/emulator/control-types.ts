import type {
  OAuthCodeInfo,
  OAuthGrantInfo,
  OAuthSettings,
  OAuthSettingsPatch,
  OAuthTarget,
  OAuthUserSpec,
} from "./oauth-types.js";
import type { AppType, EmulatorApp, Limit, MeteredPath } from "./types.js";
import type { WecomControl } from "./wecom-types.js";

/**
 * Which token slot a token lives in. Classic (`/cgi-bin/token`) and stable
 * (`/cgi-bin/stable_token`) slots of one appid are isolated (R11). Later
 * kinds (WeCom, component) get their own names here; web OAuth user tokens
 * are kept apart, in oauth-grants.ts.
 */
export type TokenKind = "classic" | "stable";

/** Fields of an account that can change without a secret reset. */
export interface AppPatch {
  type?: AppType;
  component?: boolean;
}

/** An account as listed by the control API (never includes the secret). */
export interface AppInfo {
  appid: string;
  type: AppType;
  component: boolean;
  secretFrozen: boolean;
  flags: AccountFlags;
  ipWhitelist: string[] | null;
  risk: RiskState;
}

/** Account penalties checked after the secret (R4). */
export interface AccountFlags {
  /** 50004: the account may not use the token APIs. */
  tokenForbidden: boolean;
  /** 50007: the account is frozen. */
  accountFrozen: boolean;
}

/**
 * The IP-risk confirmation flow of the token APIs (R4). `confirm_required`
 * answers 89503 once and then becomes `pending` (89501) until the test sets
 * `none` (approved), `rejected` (89507) or `blocked` (89506). The states do
 * not expire on their own (emulator choice).
 */
export type RiskState = "none" | "confirm_required" | "pending" | "rejected" | "blocked";

/** What a fault does to a matching request (R43). */
export type FaultAction =
  /** Answer HTTP 200 with this errcode (and the table errmsg unless given). */
  | { type: "errcode"; errcode: number; errmsg?: string }
  /** Answer with this HTTP status and a short text/plain body. */
  | { type: "http"; status: number; body?: string }
  /**
   * Wait `ms` of real time, then process the request normally. It is
   * processed even if the client gave up meanwhile, like a slow upstream.
   */
  | { type: "latency"; ms: number }
  /** Never answer; the socket closes when the client gives up or on `close()`. */
  | { type: "hang" };

export interface FaultSpec {
  /** A WeChat API path such as "/cgi-bin/token", or "*" for every API path. */
  endpoint: string;
  /** Only requests for this account (the appid parameter, or the token's owner). */
  appid?: string;
  /** How many requests the fault fires on before it retires; default unlimited. */
  times?: number;
  /** Chance (0–1] that a matching request triggers it; default 1. */
  probability?: number;
  action: FaultAction;
}

export interface FaultInfo extends FaultSpec {
  id: string;
  /** How many requests it has fired on. */
  fired: number;
}

/** Result of `checkToken`; it does not count as a call. */
export interface TokenCheck {
  valid: boolean;
  /** What an API would answer for this token (40001, 40014 or 42001). */
  errcode?: number;
  appid?: string;
  slot?: TokenKind;
  /** "current" or "grace" while valid. */
  role?: "current" | "grace";
  /** Issue time + lifetime, in epoch ms. */
  expiresAt?: number;
  /** When it stops working: expiry, or the end of its grace period. */
  validUntil?: number;
}

/** A token that still works right now. Includes the value: this is a test hook. */
export interface LiveToken {
  appid: string;
  slot: TokenKind;
  role: "current" | "grace";
  value: string;
  generation: number;
  issuedAt: number;
  expiresAt: number;
  validUntil: number;
}

/** Calls of one endpoint by one account (or "-" when no account was identified). */
export interface EndpointCounter {
  calls: number;
  successes: number;
  /** Count per errcode (as a string key), injected faults included. */
  errors: Record<string, number>;
  /** How many of the calls an injected fault answered or delayed. */
  faults: number;
  /** Today's quota use, for a metered endpoint and a known account. */
  quotaUsed?: number;
}

/** `counters()[endpoint][appid]`. */
export type CounterSnapshot = Record<string, Record<string, EndpointCounter>>;

export interface QuotaEntry {
  dailyLimit: Limit;
  used: number;
  remain: number | null;
  minuteLimit: Limit;
}

export type QuotaSnapshot = Record<MeteredPath, QuotaEntry>;

/**
 * The `/_emulator/*` operations, callable in-process. Methods that name an
 * appid throw `EmulatorControlError` (status 404) for an unknown account.
 */
export interface EmulatorControl extends WecomControl {
  addApp(app: EmulatorApp): void;
  updateApp(appid: string, patch: AppPatch): void;
  /** Removes the account; its tokens die (40001). */
  removeApp(appid: string): void;
  listApps(): AppInfo[];
  /** Sets a new secret; every token of the appid dies at once (40001, R44). */
  resetSecret(appid: string, newSecret: string): void;
  /** 40243 from the token APIs until unfrozen. Applies at once (real: 10 min). */
  freezeSecret(appid: string): void;
  unfreezeSecret(appid: string): void;
  setAccountFlags(appid: string, flags: Partial<AccountFlags>): void;
  /** `null` turns the whitelist off; otherwise other IPs get 40164. */
  setIpWhitelist(appid: string, ips: string[] | null): void;
  setRiskState(appid: string, state: RiskState): void;
  setDailyLimit(appid: string, endpoint: MeteredPath, limit: Limit): void;
  setMinuteLimit(appid: string, endpoint: MeteredPath, limit: Limit): void;
  quota(appid: string): QuotaSnapshot;
  /** Returns the fault id. */
  injectFault(spec: FaultSpec): string;
  removeFault(id: string): boolean;
  clearFaults(): void;
  listFaults(): FaultInfo[];
  counters(): CounterSnapshot;
  /**
   * Calls of `endpoint`, by one appid or summed over all. For WeCom paths the
   * account is the corpid, or `<corpid>/<agentid or app name>` for one app.
   */
  callCount(endpoint: string, appid?: string): number;
  resetCounters(): void;
  checkToken(value: string): TokenCheck;
  liveTokens(): LiveToken[];
  /** The emulator's current time in epoch ms. */
  now(): number;
  /** Moves the emulator clock forward; returns the new now. */
  advanceClock(ms: number): number;
  /**
   * Plays "the user authorizes `appid`": a fresh code that
   * `/sns/oauth2/access_token` accepts once, within the code life (R33).
   */
  authorizeUser(appid: string, user: OAuthUserSpec): OAuthCodeInfo;
  /** The user's grants (one per exchanged code), oldest first, with token values. */
  oauthGrants(appid: string, openid: string): OAuthGrantInfo[];
  /** The named refresh tokens expire now: refresh → 42002. Returns how many; 404 if none. */
  expireRefreshToken(appid: string, target: OAuthTarget): number;
  /** The named refresh tokens are voided now: refresh → 40030. Returns how many; 404 if none. */
  voidRefreshToken(appid: string, target: OAuthTarget): number;
  /**
   * The user changed the WeChat password: every grant of `openid` dies now,
   * refresh → 42007 and `/sns/auth` → 40001 (§12 C7). Returns how many; 404 if none.
   */
  changeUserPassword(appid: string, openid: string): number;
  oauthSettings(appid: string): OAuthSettings;
  setOAuthSettings(appid: string, patch: OAuthSettingsPatch): void;
  /**
   * Back to the start: the configured apps with their original secrets, no
   * tokens, tickets, quota use, faults or counters. The clock is not rewound.
   */
  reset(): void;
}

/** A rejected control operation; `status` is the HTTP status the endpoint uses. */
export class EmulatorControlError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "EmulatorControlError";
    this.status = status;
  }
}
