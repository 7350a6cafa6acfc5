import type { ExchangeClaim, ExchangeLedger } from "../../core/ports/exchange-ledger.js";
import type { Clock } from "../../shared/clock.js";

type Entry =
  | { readonly state: "pending"; readonly until: number }
  | {
      readonly state: "settled";
      readonly owner: string;
      readonly outcome: string;
      readonly until: number;
    };

/**
 * The single-node exchange ledger: a Map with expiry, swept as it is used so
 * it stays as small as the codes of the last few minutes.
 */
export class LocalExchangeLedger implements ExchangeLedger {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock) {}

  async claim(id: string, _owner: string, claimTtlMs: number): Promise<ExchangeClaim> {
    const now = this.clock.now();
    this.#sweep(now);
    const entry = this.#entries.get(id);
    if (entry?.state === "settled") {
      return { state: "settled", owner: entry.owner, outcome: entry.outcome };
    }
    if (entry?.state === "pending") return { state: "pending" };
    this.#entries.set(id, { state: "pending", until: now + claimTtlMs });
    return { state: "claimed" };
  }

  async settle(id: string, owner: string, outcome: string, keepMs: number): Promise<void> {
    this.#entries.set(id, { state: "settled", owner, outcome, until: this.clock.now() + keepMs });
  }

  async release(id: string, _owner: string): Promise<void> {
    if (this.#entries.get(id)?.state === "pending") this.#entries.delete(id);
  }

  /** Entries in insertion order expire roughly in order: stop at the first live one. */
  #sweep(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.until > now) break;
      this.#entries.delete(id);
    }
  }
}
