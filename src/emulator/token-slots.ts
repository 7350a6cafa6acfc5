import type { LiveToken, TokenKind } from "./control-types.js";
import { killAt, type TokenRecord, type TokenRegistry, validUntil } from "./token-registry.js";

/** The two-slot model of one (appid, kind): the newest token and the one before it (R8). */
interface Slot {
  current: TokenRecord | undefined;
  grace: TokenRecord | undefined;
  generation: number;
  /** Time of the last `force_refresh` call that rotated (stable slots, R17). */
  lastForceAt: number | undefined;
}

/**
 * Per-(appid, kind) token slots. Rotation follows R6–R8 and R15–R16: the new
 * token becomes current, the previous one keeps working until
 * min(its expiry, now + grace), and the one before that dies at once.
 */
export class TokenSlots {
  readonly #registry: TokenRegistry;
  readonly #graceMs: number;
  readonly #slots = new Map<string, Slot>();

  constructor(registry: TokenRegistry, graceMs: number) {
    this.#registry = registry;
    this.#graceMs = graceMs;
  }

  /** The current token of the slot if it still works at `now`. */
  current(appid: string, kind: TokenKind, now: number): TokenRecord | undefined {
    const current = this.#slot(appid, kind).current;
    return current && now < validUntil(current) ? current : undefined;
  }

  lastForceAt(appid: string, kind: TokenKind): number | undefined {
    return this.#slot(appid, kind).lastForceAt;
  }

  markForce(appid: string, kind: TokenKind, now: number): void {
    this.#slot(appid, kind).lastForceAt = now;
  }

  /** Issues a new token and demotes the previous ones. */
  rotate(appid: string, kind: TokenKind, now: number, lifetimeMs: number): TokenRecord {
    const slot = this.#slot(appid, kind);
    if (slot.grace) killAt(slot.grace, now);
    if (slot.current) killAt(slot.current, now + this.#graceMs);
    slot.grace = slot.current;
    slot.generation += 1;
    slot.current = this.#registry.mint(appid, kind, slot.generation, now, lifetimeMs);
    return slot.current;
  }

  /** Tokens that work at `now`, current before grace, in slot creation order. */
  live(now: number): LiveToken[] {
    const out: LiveToken[] = [];
    for (const slot of this.#slots.values()) {
      for (const role of ["current", "grace"] as const) {
        const record = slot[role];
        if (record && now < validUntil(record)) out.push(describe(record, role));
      }
    }
    return out;
  }

  /** "current" / "grace" for a record still held by its slot. */
  roleOf(record: TokenRecord): "current" | "grace" | undefined {
    const slot = this.#slots.get(key(record.appid, record.kind));
    if (slot?.current === record) return "current";
    if (slot?.grace === record) return "grace";
    return undefined;
  }

  clear(): void {
    this.#slots.clear();
  }

  #slot(appid: string, kind: TokenKind): Slot {
    const k = key(appid, kind);
    let slot = this.#slots.get(k);
    if (!slot) {
      slot = { current: undefined, grace: undefined, generation: 0, lastForceAt: undefined };
      this.#slots.set(k, slot);
    }
    return slot;
  }
}

function key(appid: string, kind: TokenKind): string {
  return `${kind}\u0000${appid}`;
}

function describe(record: TokenRecord, role: "current" | "grace"): LiveToken {
  return {
    appid: record.appid,
    slot: record.kind,
    role,
    value: record.value,
    generation: record.generation,
    issuedAt: record.issuedAt,
    expiresAt: record.expiresAt,
    validUntil: validUntil(record),
  };
}
