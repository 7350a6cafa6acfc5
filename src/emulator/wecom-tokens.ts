import { recordLeakCandidate } from "./leak-record.js";
import { mintTicketValue, mintTokenValue } from "./token-format.js";
import type { WecomTicketInfo, WecomTokenInfo } from "./wecom-types.js";

/** One issued WeCom token. Kept forever, so a value is never reissued (R3). */
export interface WecomToken {
  readonly value: string;
  readonly corpid: string;
  readonly app: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** Set by early invalidation, an app's new secret or its removal (R30). */
  killedAt: number | undefined;
}

interface Ticket {
  readonly value: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export type WecomVerdict =
  | { readonly valid: true; readonly token: WecomToken }
  | { readonly valid: false; readonly errcode: 40014 | 42001; readonly token?: WecomToken };

const appKey = (corpid: string, app: string) => `${corpid}\u0000${app}`;

/**
 * WeCom tokens per (corp, app) and tickets per corp and per app (R29, R30,
 * R32). Validity is half-open like the official-account tokens'. Tokens
 * live in their own registry: official-account tokens are unknown here and
 * WeCom tokens are unknown to the official-account APIs.
 */
export class WecomTokens {
  readonly #byValue = new Map<string, WecomToken>();
  /** The token gettoken hands out for (corp, app) while it works. */
  readonly #current = new Map<string, WecomToken>();
  readonly #corpTickets = new Map<string, Ticket>();
  readonly #agentTickets = new Map<string, Ticket>();
  #serial = 0;

  /** gettoken (R29): the current token while it works, else a new one. */
  fetch(corpid: string, app: string, now: number, lifetimeMs: number): WecomToken {
    const held = this.#current.get(appKey(corpid, app));
    if (held && this.verdict(held.value, now).valid) return held;
    this.#serial += 1;
    let value = mintTokenValue(this.#serial);
    while (this.#byValue.has(value)) value = mintTokenValue(this.#serial);
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("access_token", value);
    const token: WecomToken = {
      value,
      corpid,
      app,
      issuedAt: now,
      expiresAt: now + lifetimeMs,
      killedAt: undefined,
    };
    this.#byValue.set(value, token);
    this.#current.set(appKey(corpid, app), token);
    return token;
  }

  lookup(value: string): WecomToken | undefined {
    return this.#byValue.get(value);
  }

  /**
   * Never issued → 40014; killed before its expiry → 40014 (R30); past its
   * expiry → 42001 (R30).
   */
  verdict(value: string, now: number): WecomVerdict {
    const token = this.#byValue.get(value);
    if (!token) return { valid: false, errcode: 40014 };
    const killed = token.killedAt !== undefined && now >= token.killedAt;
    if (killed && (token.killedAt as number) < token.expiresAt) {
      return { valid: false, errcode: 40014, token };
    }
    if (now >= token.expiresAt) return { valid: false, errcode: 42001, token };
    return { valid: true, token };
  }

  /** Kills one token now (R30); false if it was unknown or already dead. */
  kill(value: string, now: number): boolean {
    const token = this.#byValue.get(value);
    if (!token || !this.verdict(value, now).valid) return false;
    token.killedAt = now;
    return true;
  }

  /** Kills every live token of an app (new secret, removal), or of a corp when `app` is absent. */
  killApp(corpid: string, app: string | undefined, now: number): void {
    for (const token of this.#byValue.values()) {
      if (token.corpid !== corpid || (app !== undefined && token.app !== app)) continue;
      if (this.verdict(token.value, now).valid) token.killedAt = now;
    }
    if (app === undefined) this.#forgetTickets(corpid);
    else this.#agentTickets.delete(appKey(corpid, app));
  }

  /** The corp's ticket (`app` undefined) or the app's agent_config ticket; same within its life. */
  ticket(corpid: string, app: string | undefined, now: number, lifetimeMs: number): Ticket {
    const store = app === undefined ? this.#corpTickets : this.#agentTickets;
    const key = app === undefined ? corpid : appKey(corpid, app);
    const held = store.get(key);
    if (held && now < held.expiresAt) return held;
    const ticket = { value: mintTicketValue(), issuedAt: now, expiresAt: now + lifetimeMs };
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("ticket", ticket.value);
    store.set(key, ticket);
    return ticket;
  }

  live(now: number): WecomTokenInfo[] {
    return [...this.#byValue.values()]
      .filter((t) => this.verdict(t.value, now).valid)
      .map(({ corpid, app, value, issuedAt, expiresAt }) => ({
        corpid,
        app,
        value,
        issuedAt,
        expiresAt,
      }));
  }

  liveTickets(now: number): WecomTicketInfo[] {
    const out: WecomTicketInfo[] = [];
    for (const [corpid, t] of this.#corpTickets) {
      if (now < t.expiresAt) out.push({ corpid, kind: "corp", ...t });
    }
    for (const [key, t] of this.#agentTickets) {
      const [corpid, app] = key.split("\u0000") as [string, string];
      if (now < t.expiresAt) out.push({ corpid, app, kind: "agent_config", ...t });
    }
    return out;
  }

  clear(): void {
    this.#byValue.clear();
    this.#current.clear();
    this.#corpTickets.clear();
    this.#agentTickets.clear();
  }

  #forgetTickets(corpid: string): void {
    this.#corpTickets.delete(corpid);
    for (const key of this.#agentTickets.keys()) {
      if (key.startsWith(`${corpid}\u0000`)) this.#agentTickets.delete(key);
    }
  }
}
