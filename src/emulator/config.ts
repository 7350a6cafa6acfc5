import type { Logger } from "../shared/logger.js";
import { silentLogger } from "../shared/logger.js";
import type { EmulatorApp, EmulatorOptions, Limit, MeteredPath, OAuthOptions } from "./types.js";
import { DEFAULT_WECOM_LIMITS } from "./wecom-limits.js";
import type { WecomCorpSpec, WecomLimits, WecomOptions } from "./wecom-types.js";

/** WecomOptions resolved (ms). */
export interface WecomConfig {
  readonly corps: readonly WecomCorpSpec[];
  readonly tokenLifetimeMs: number;
  readonly ticketLifetimeMs: number;
  readonly expiresIn: "remaining" | "full";
  readonly limits: WecomLimits;
}

/** OAuthOptions resolved (ms). Unset TTLs fall back to the account type's default. */
export interface OAuthConfig {
  readonly codeTtlMs: number | undefined;
  readonly expiredCodeErrcode: 40029 | 42003;
  readonly refreshTokenTtlMs: number | undefined;
  readonly accessTokenLifetimeMs: number;
  readonly minuteLimit: Limit;
}

/** Per-minute limit of each `/sns/oauth2/*` endpoint per account (R37). */
export const OAUTH_MINUTE_LIMIT = 50_000;

/** EmulatorOptions with every default filled in (times in ms). */
export interface EmulatorConfig {
  readonly apps: readonly EmulatorApp[];
  readonly tokenLifetimeMs: number;
  readonly graceMs: number;
  readonly ticketLifetimeMs: number;
  readonly wrongSecretErrcode: 40125 | 40001;
  readonly countFailedCalls: boolean;
  readonly utcOffsetMinutes: number;
  readonly dailyLimits: Partial<Record<MeteredPath, Limit>>;
  readonly minuteLimits: Partial<Record<MeteredPath, Limit>>;
  readonly apiQuotaClearPeriod: "month" | "day";
  readonly countForceWithinGap: boolean;
  readonly malformedTokenErrcode: 40001 | 40014;
  readonly unknownTicketTypeErrcode: number;
  readonly random: () => number;
  readonly logger: Logger;
  readonly oauth: OAuthConfig;
  readonly wecom: WecomConfig;
}

/** Minimum gap between two rotating `force_refresh` calls (R17). */
export const FORCE_GAP_MS = 30_000;
/** Shared monthly allowance of clear_quota and clear_quota/v2 (R24, R25). */
export const CLEAR_QUOTA_PER_MONTH = 10;
/** Allowance of openapi/quota/clear per period (R26). */
export const API_QUOTA_CLEARS = 50;

export function resolveConfig(options: EmulatorOptions): EmulatorConfig {
  const lifetime = options.tokenLifetimeSeconds ?? 7200;
  positive("tokenLifetimeSeconds", lifetime);
  const grace = options.graceSeconds ?? 300;
  if (!(grace >= 0)) throw new RangeError(`graceSeconds must be ≥ 0, got ${grace}`);
  const ticketLifetime = options.ticketLifetimeSeconds ?? 7200;
  positive("ticketLifetimeSeconds", ticketLifetime);
  return {
    apps: (options.apps ?? []).map((a) => ({ ...a })),
    tokenLifetimeMs: lifetime * 1000,
    graceMs: grace * 1000,
    ticketLifetimeMs: ticketLifetime * 1000,
    wrongSecretErrcode: options.wrongSecretErrcode ?? 40125,
    countFailedCalls: options.countFailedCalls ?? false,
    utcOffsetMinutes: options.utcOffsetMinutes ?? 480,
    dailyLimits: { ...options.dailyLimits },
    minuteLimits: { ...options.minuteLimits },
    apiQuotaClearPeriod: options.apiQuotaClearPeriod ?? "month",
    countForceWithinGap: options.countForceWithinGap ?? true,
    malformedTokenErrcode: options.malformedTokenErrcode ?? 40001,
    unknownTicketTypeErrcode: options.unknownTicketTypeErrcode ?? 40097,
    random: options.random ?? Math.random,
    logger: options.logger ?? silentLogger(),
    oauth: resolveOAuth(options.oauth ?? {}),
    wecom: resolveWecom(options.wecom ?? {}),
  };
}

function resolveWecom(o: WecomOptions): WecomConfig {
  const token = o.tokenLifetimeSeconds ?? 7200;
  positive("wecom.tokenLifetimeSeconds", token);
  const ticket = o.ticketLifetimeSeconds ?? 7200;
  positive("wecom.ticketLifetimeSeconds", ticket);
  const expiresIn = o.expiresIn ?? "remaining";
  if (expiresIn !== "remaining" && expiresIn !== "full") {
    throw new RangeError(`wecom.expiresIn must be "remaining" or "full", got ${expiresIn}`);
  }
  const limits = { ...DEFAULT_WECOM_LIMITS, ...o.limits };
  checkWecomLimits(limits);
  return {
    corps: structuredClone(o.corps ?? []),
    tokenLifetimeMs: token * 1000,
    ticketLifetimeMs: ticket * 1000,
    expiresIn,
    limits,
  };
}

/** Each WeCom limit is an integer ≥ 0 or null; throws a RangeError naming the bad one. */
export function checkWecomLimits(limits: Partial<WecomLimits>): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!(name in DEFAULT_WECOM_LIMITS)) throw new RangeError(`unknown wecom limit ${name}`);
    if (value !== null && !(Number.isInteger(value) && (value as number) >= 0)) {
      throw new RangeError(`wecom limit ${name} must be an integer ≥ 0 or null, got ${value}`);
    }
  }
}

function resolveOAuth(o: OAuthOptions): OAuthConfig {
  const seconds = (name: string, value: number | undefined): number | undefined => {
    if (value === undefined) return undefined;
    positive(`oauth.${name}`, value);
    return value * 1000;
  };
  const expired = o.expiredCodeErrcode ?? 40029;
  if (expired !== 40029 && expired !== 42003) {
    throw new RangeError(`oauth.expiredCodeErrcode must be 40029 or 42003, got ${expired}`);
  }
  const limit = o.minuteLimit === undefined ? OAUTH_MINUTE_LIMIT : o.minuteLimit;
  if (limit !== null && !(Number.isInteger(limit) && limit >= 0)) {
    throw new RangeError(`oauth.minuteLimit must be an integer ≥ 0 or null, got ${limit}`);
  }
  return {
    codeTtlMs: seconds("codeTtlSeconds", o.codeTtlSeconds),
    expiredCodeErrcode: expired,
    refreshTokenTtlMs: seconds("refreshTokenTtlSeconds", o.refreshTokenTtlSeconds),
    accessTokenLifetimeMs:
      seconds("accessTokenLifetimeSeconds", o.accessTokenLifetimeSeconds) ?? 7_200_000,
    minuteLimit: limit,
  };
}

function positive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
}
