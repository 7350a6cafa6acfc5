import { recordLeakCandidate } from "./leak-record.js";
import { mintTicketValue } from "./token-format.js";

/** The getticket types (R19, R20). */
export const TICKET_TYPES = ["jsapi", "wx_card"] as const;
export type TicketType = (typeof TICKET_TYPES)[number];

export function isTicketType(value: string | null): value is TicketType {
  return (TICKET_TYPES as readonly (string | null)[]).includes(value);
}

interface Ticket {
  readonly value: string;
  readonly expiresAt: number;
}

/**
 * One ticket per (appid, type) (R19–R20). Within its lifetime every fetch
 * returns the same value, whichever access token of the account asks, and
 * token rotation does not touch it; after expiry the next fetch issues a new
 * one.
 */
export class TicketStore {
  readonly #tickets = new Map<string, Ticket>();
  readonly #lifetimeMs: number;

  constructor(lifetimeMs: number) {
    this.#lifetimeMs = lifetimeMs;
  }

  fetch(appid: string, type: TicketType, now: number): string {
    const key = `${type}\u0000${appid}`;
    const held = this.#tickets.get(key);
    if (held && now < held.expiresAt) return held.value;
    const ticket = { value: mintTicketValue(), expiresAt: now + this.#lifetimeMs };
    this.#tickets.set(key, ticket);
    // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
    recordLeakCandidate("ticket", ticket.value);
    return ticket.value;
  }

  clear(): void {
    this.#tickets.clear();
  }
}
