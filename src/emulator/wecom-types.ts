/**
 * Public shapes of the WeCom (企业微信) part of the emulator (facts §6,
 * R28–R32, §12 C10): corps and their apps, options, limits, and what the
 * control API reports.
 */

/** The WeCom API paths the emulator serves. */
export const WECOM_GETTOKEN = "/cgi-bin/gettoken";
export const WECOM_CORP_TICKET = "/cgi-bin/get_jsapi_ticket";
export const WECOM_AGENT_TICKET = "/cgi-bin/ticket/get";
/** 获取应用详情: answers 301002 for a token of another app (C10); the emulator's app-only probe. */
export const WECOM_AGENT_GET = "/cgi-bin/agent/get";

/** One app of a corp: a self-built or system app with its own secret. */
export interface WecomAppSpec {
  /** Absent for corp-level secrets (contacts sync, customer contact…). */
  agentid?: number;
  /**
   * How control calls and counters name an app without an agentid
   * (default "corp"). Apps with an agentid are named by it.
   */
  name?: string;
  secret: string;
  /** Trusted IPs (企业可信IP); other callers get 60020. Absent or null: anyone. */
  trustedIps?: string[] | null;
  /**
   * The token-consuming APIs this app may call; others get 48002. `true` or
   * absent: all; `false`: none.
   */
  permitted?: boolean | string[];
  /** A disabled app gets 50003 from gettoken and from every API. */
  disabled?: boolean;
}

export interface WecomCorpSpec {
  corpid: string;
  apps: WecomAppSpec[];
}

/** Fields of an app that can change; a new secret kills the app's tokens. */
export type WecomAppPatch = Partial<Omit<WecomAppSpec, "agentid" | "name">>;

/** R31–R32 thresholds; `null` turns one off. Defaults in the comments. */
export interface WecomLimits {
  /** Calls per (corp, API) in a clock minute: 10,000; past it 45009 and a 60 s block. */
  perMinute: number | null;
  /** Calls per (corp, API) in a clock hour: 150,000; past it 45009 and a 60 min block. */
  perHour: number | null;
  /** Ticket fetches (both kinds) per corp in a clock hour: 400. */
  ticketsPerCorpHour: number | null;
  /** Ticket fetches (both kinds) per app in a clock hour: 100. */
  ticketsPerAppHour: number | null;
  /** Failed gettoken calls per corp in a clock hour: 2000 (⚠); the 2000th blocks gettoken 1 h. */
  failedGettokenPerHour: number | null;
}

export interface WecomOptions {
  /** Corps known at start and after `reset()`. */
  corps?: WecomCorpSpec[];
  /** Token life, default 7200 s (R29). */
  tokenLifetimeSeconds?: number;
  /** Ticket life, default 7200 s (R32). */
  ticketLifetimeSeconds?: number;
  /**
   * `expires_in` of a repeat answer within validity: "remaining" seconds
   * (default, emulator choice) or the "full" lifetime (R29).
   */
  expiresIn?: "remaining" | "full";
  limits?: Partial<WecomLimits>;
}

/** An app as listed by the control API (no secret). */
export interface WecomAppInfo {
  corpid: string;
  /** The agentid as a string, or the name of a corp-level app. */
  app: string;
  agentid?: number;
  trustedIps: string[] | null;
  permitted: boolean | string[];
  disabled: boolean;
}

/** A live WeCom token, with its value: a test hook. */
export interface WecomTokenInfo {
  corpid: string;
  app: string;
  value: string;
  issuedAt: number;
  expiresAt: number;
}

/** A live WeCom ticket: the corp's (`app` absent) or an app's agent_config one. */
export interface WecomTicketInfo {
  corpid: string;
  app?: string;
  kind: "corp" | "agent_config";
  value: string;
  issuedAt: number;
  expiresAt: number;
}

/** The WeCom part of `EmulatorControl`. Unknown corps and apps are 404s. */
export interface WecomControl {
  addWecomCorp(corp: WecomCorpSpec): void;
  /** Removes the corp; its tokens die (40014) and its tickets are forgotten. */
  removeWecomCorp(corpid: string): void;
  listWecomApps(corpid?: string): WecomAppInfo[];
  addWecomApp(corpid: string, app: WecomAppSpec): void;
  /** `app` is the agentid (as a string) or the name of a corp-level app. */
  updateWecomApp(corpid: string, app: string, patch: WecomAppPatch): void;
  removeWecomApp(corpid: string, app: string): void;
  /** R30: the token dies now (40014); the next gettoken issues a new one. 404 if unknown or dead. */
  invalidateWecomToken(value: string): void;
  wecomTokens(): WecomTokenInfo[];
  wecomTickets(): WecomTicketInfo[];
  wecomLimits(): WecomLimits;
  setWecomLimits(patch: Partial<WecomLimits>): void;
}
