import { AppRegistry } from "./apps.js";
import { type Calendar, createCalendar } from "./calendar.js";
import { ClearAllowance } from "./clear-allowance.js";
import { API_QUOTA_CLEARS, CLEAR_QUOTA_PER_MONTH, type EmulatorConfig } from "./config.js";
import { CallCounters } from "./counters.js";
import { FaultInjector } from "./faults.js";
import { OAuthCodes } from "./oauth-codes.js";
import { OAuthGrants } from "./oauth-grants.js";
import { OAuthPolicy } from "./oauth-policy.js";
import type { OffsetClock } from "./offset-clock.js";
import { QuotaLedger } from "./quota.js";
import { TicketStore } from "./tickets.js";
import { TokenRegistry } from "./token-registry.js";
import { TokenSlots } from "./token-slots.js";
import type { MeteredPath } from "./types.js";
import { WecomCorps } from "./wecom-corps.js";
import { WecomLimiter } from "./wecom-limits.js";
import { WecomTokens } from "./wecom-tokens.js";

/**
 * Everything the emulator remembers, in one place so `reset()` is exact and
 * so later APIs (WeCom, OAuth, component) add their own stores beside these.
 */
export class EmulatorState {
  readonly config: EmulatorConfig;
  readonly clock: OffsetClock;
  readonly calendar: Calendar;
  readonly apps = new AppRegistry();
  readonly tokens: TokenRegistry;
  readonly slots: TokenSlots;
  readonly tickets: TicketStore;
  readonly quota: QuotaLedger;
  /** clear_quota and clear_quota/v2 (R24, R25). */
  readonly quotaClears: ClearAllowance;
  /** openapi/quota/clear (R26). */
  readonly apiQuotaClears: ClearAllowance;
  readonly faults: FaultInjector;
  readonly counters = new CallCounters();
  /** Web OAuth (R33–R37): codes the control API minted, grants, and their limits. */
  readonly oauthCodes = new OAuthCodes();
  readonly oauthGrants = new OAuthGrants();
  readonly oauthPolicy: OAuthPolicy;
  /** WeCom (R28–R32): corps and apps, their tokens and tickets, and the limits. */
  readonly wecomCorps = new WecomCorps();
  readonly wecomTokens = new WecomTokens();
  readonly wecomLimiter: WecomLimiter;

  constructor(config: EmulatorConfig, clock: OffsetClock) {
    this.config = config;
    this.clock = clock;
    this.calendar = createCalendar(config.utcOffsetMinutes);
    this.tokens = new TokenRegistry(config.malformedTokenErrcode);
    this.slots = new TokenSlots(this.tokens, config.graceMs);
    this.tickets = new TicketStore(config.ticketLifetimeMs);
    this.quota = new QuotaLedger(this.calendar, config, (appid) => this.apps.typeOf(appid));
    this.quotaClears = new ClearAllowance(CLEAR_QUOTA_PER_MONTH, "month", this.calendar);
    this.apiQuotaClears = new ClearAllowance(
      API_QUOTA_CLEARS,
      config.apiQuotaClearPeriod,
      this.calendar,
    );
    this.faults = new FaultInjector(config.random);
    this.oauthPolicy = new OAuthPolicy(config.oauth, this.calendar, (appid) =>
      this.apps.typeOf(appid),
    );
    this.wecomLimiter = new WecomLimiter(config.wecom.limits);
    this.reset();
  }

  now(): number {
    return this.clock.now();
  }

  /** Forgets everything and re-adds the configured apps. Does not rewind the clock. */
  reset(): void {
    this.apps.clear();
    this.tokens.clear();
    this.slots.clear();
    this.tickets.clear();
    this.quota.clear();
    this.quotaClears.clear();
    this.apiQuotaClears.clear();
    this.faults.clear();
    this.counters.clear();
    this.oauthCodes.clear();
    this.oauthGrants.clear();
    this.oauthPolicy.clear();
    this.wecomCorps.clear();
    this.wecomTokens.clear();
    this.wecomLimiter.clear(true);
    for (const app of this.config.apps) this.apps.add(app);
    for (const corp of this.config.wecom.corps) this.wecomCorps.addCorp(corp);
  }

  /**
   * Counts a failed call of an identified account against its quota when
   * `countFailedCalls` is on (R5). Quota rejections themselves never count.
   */
  chargeFailure(appid: string, path: MeteredPath, errcode: number): void {
    if (!this.config.countFailedCalls || errcode === 45009 || errcode === 45011) return;
    if (this.apps.get(appid)) this.quota.consume(appid, path, this.now());
  }
}
