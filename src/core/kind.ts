import type { CredentialKey, CredentialKind, StoredCredential } from "./credential.js";
import type { CallPurpose, UpstreamGate } from "./ports/upstream-gate.js";

/**
 * The contract of one credential kind: everything the core, the RPC layer,
 * the config, the CLI, the quota ledger and metrics need to know about it.
 * Plug-ins live in src/credentials/<family>/ and are listed once in
 * src/credentials/index.ts; nothing else names a kind.
 */

/** What names one credential of a kind besides its account. */
export type SubjectKind = "none" | "openid" | "authorizer_appid";

/**
 * How the broker reacts to an errcode:
 * "retryable" transient (retry with backoff); "config" an operator must act
 * (do not hammer); "quota" stop calling for a while; "token" the credential
 * passed to the call is stale (compare-and-refresh it, retry once); "unknown"
 * not retried soon, not an outage, the caller and an alert are told; "grant"
 * the subject's grant is void (an authorization code or refresh token
 * invalid, used or expired): never retried, the grant is deleted and the
 * caller told to have the subject authorize again.
 */
export type ErrcodeCategory = "retryable" | "config" | "quota" | "token" | "unknown" | "grant";

/** A family's reading of its errcodes: the same number means different things per family. */
export interface ErrcodeTable {
  classify(errcode: number, endpoint: string): ErrcodeCategory;
  /** What a person should do about `errcode` from `endpoint`; `errmsg` (scrubbed) may name a detail, e.g. an IP. */
  remedy(errcode: number, endpoint: string, errmsg?: string): string;
  /** The errcodes a client may report through InvalidateToken: they mean the credential is stale. */
  readonly stale: readonly number[];
}

/** Why the quota ledger refused a call ("reserved": a report's share is used; the rest is kept for scheduled refreshes). */
export type QuotaRefusal =
  | "budget"
  | "blocked"
  | "force_gap"
  | "force_daily"
  | "clear_gap"
  | "reserved";

/** An endpoint the quota ledger meters, with its default budget (null: unmetered). */
export interface QuotaEndpointSpec {
  /** The ledger's name for it: the WeChat path, or a pseudo-endpoint such as "force_refresh". */
  readonly name: string;
  /** Its name inside Redis keys (stable: changing it forgets today's counts). */
  readonly segment: string;
  /** Calls per China day, or per window when it has one. */
  readonly budget: number | null;
  /** Counted per fixed window instead of per China day (WeCom limits per minute and hour). */
  readonly window?: QuotaWindowSpec;
  /** Minimum gap between allowed calls, and the refusal it gives. */
  readonly gap?: { readonly ms: number; readonly refusal: "force_gap" | "clear_gap" };
  /** A quota clear does not zero it (clear_quota counts the clears themselves). */
  readonly keptOnClear?: boolean;
}

/**
 * A budget per fixed window (aligned to the epoch, as WeCom's appear to be)
 * for each app, and optionally one for all apps of a group: a WeCom corp,
 * whose limits count every app of the corp together.
 */
export interface QuotaWindowSpec {
  readonly period: QuotaPeriod;
  /**
   * The counter's name when endpoints are limited together (WeCom counts the
   * corp and the app JS-SDK tickets against one limit); default: the segment.
   */
  readonly meter?: string;
  /** Calls per window for all apps of a group together; null: no group budget. */
  readonly groupBudget: number | null;
}

export type QuotaPeriod = "minute" | "hour";

/** The configured account a credential belongs to, as a kind sees it. */
export interface KindAccount {
  readonly id: string;
  readonly type: string;
  readonly appid: string;
  /** A WeCom app's AgentId (absent for corp-level secrets and other families). */
  readonly agentid?: string;
  readonly secret: { reveal(): string };
  readonly tokenMode: "classic" | "stable";
}

/** The broker's refresh settings, from which each kind picks its margins. */
export interface MarginSettings {
  readonly marginMs: number;
  readonly stableMarginMs: number;
  readonly minRemainingMs: number;
  readonly ticketMinRemainingMs: number;
}

export interface KindMargins {
  /** Refresh proactively this long before expiry (before jitter and the lifetime cap). */
  readonly refreshMarginMs: number;
  /** Stop handing the credential out this close to expiry (capped at 5% of its lifetime). */
  readonly minRemainingMs: number;
}

/** A credential as WeChat returned it. */
export interface FetchedCredential {
  readonly value: string;
  /** Lifetime WeChat reported, in seconds. */
  readonly expiresInSeconds: number;
  /** The kind's new private state (e.g. the refresh token WeChat returned); kept as is when absent. */
  readonly state?: string;
  /** Until when it can be renewed without its subject (StoredCredential.renewableUntil); kept when absent. */
  readonly renewableUntil?: number;
}

/**
 * The upstream clients of the credential families, one property per family.
 * Families add theirs by module augmentation (see credentials/wechat/client.ts),
 * so the core names none of them.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in each family
export interface UpstreamClients {}

/** What a kind's fetch gets from the core. */
export interface FetchContext {
  readonly upstreams: UpstreamClients;
  readonly account: KindAccount;
  readonly key: CredentialKey;
  readonly signal: AbortSignal;
  /** Retry WeChat's faults inline: a caller is waiting (scheduled refreshes back off on their own). */
  readonly retries: boolean;
  /** An operator's leak response (stable tokens only): WeChat issues a new value at once. */
  readonly force: boolean;
  readonly purpose: CallPurpose;
  /** The stored credential being replaced, with its private state; undefined on a first fetch. */
  readonly current: StoredCredential | undefined;
  readonly gate: UpstreamGate;
  /** The broker's clock, epoch ms. */
  now(): number;
  /** The account's credential values the broker knows: scrubbed from WeChat's text. */
  knownValues(): string[];
  /** The credential this kind depends on (`dependsOn`), current and servable. */
  parent(signal: AbortSignal): Promise<StoredCredential>;
  /** WeChat rejected the parent's `value` as stale: compare-and-refresh it. */
  reportStaleParent(value: string, errcode: number, signal: AbortSignal): Promise<void>;
}

export interface CredentialKindSpec {
  /** The kind's name in config, ACLs, the CLI, metrics and keys, e.g. "jsapi_ticket". */
  readonly name: CredentialKind;
  /** Its `TokenKind` number in the protobuf contract. */
  readonly protoNumber: number;
  /** The account types that have it. */
  readonly accountTypes: readonly string[];
  readonly subject: SubjectKind;
  /** The kind whose credential its fetch needs (a ticket needs the access token). */
  readonly dependsOn?: CredentialKind;
  /** Refreshed on the schedule before expiry; false: fetched on demand only (per-user tokens). */
  readonly proactive: boolean;
  /**
   * How a successful fetch treats the value it replaces. Undefined: it keeps
   * working until its own expiry (tickets). Otherwise it works at most
   * `overlapMs` longer (gates the overlap and foreign-fetcher detection), and
   * `onEveryFetch` tells whether every fetch rotates (then the broker's own
   * next fetch ends the current value: its reported expiry is shortened).
   */
  readonly rotation?: {
    readonly overlapMs: number;
    onEveryFetch(account: KindAccount): boolean;
    /** Errcodes saying the value was superseded by a newer fetch (evidence of a foreign fetcher). */
    readonly supersededErrcodes: readonly number[];
  };
  /** After WeChat returned the stored value again: "converge" halves the time to the end; "at_end" waits for it. */
  readonly sameValueRetry: "converge" | "at_end";
  /** Endpoints its fetch calls, with default budgets. */
  readonly endpoints: readonly QuotaEndpointSpec[];
  readonly errcodes: ErrcodeTable;
  margins(account: KindAccount, settings: MarginSettings): KindMargins;
  fetch(ctx: FetchContext): Promise<FetchedCredential>;
  /**
   * Operators may force a new value at once (a leak response). Returns why
   * `account` cannot, or undefined when it can; absent: the kind has no force.
   */
  readonly forceRefusal?: (account: KindAccount) => string | undefined;
}
