import type Database from "better-sqlite3";
import type { ExchangeClaim, ExchangeLedger } from "../../core/ports/exchange-ledger.js";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import { isSealedValue, type ValueCipher } from "../sealing/value-cipher.js";
import { sqliteCall } from "./sqlite-errors.js";
import type { SqliteFile } from "./sqlite-file.js";

interface ExchangeRow {
  readonly owner: string;
  readonly outcome: string | null;
  readonly until: number;
}

export interface SqliteExchangeLedgerOptions {
  readonly file: SqliteFile;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Seals outcomes at rest (they hold a user's access token); absent: stored as they are. */
  readonly cipher?: ValueCipher | undefined;
  /** With a cipher: until then (epoch ms), outcomes stored unencrypted are still read. */
  readonly acceptPlaintextUntil?: number | undefined;
}

/**
 * The single node's exchange ledger in the SQLite file, so a code settled
 * before a restart still answers its repeats after it (the memory ledger,
 * LocalExchangeLedger, would send them to WeChat again: 40163). Rows past
 * their time are swept as the ledger is used, like the memory one's.
 *
 * An outcome is sealed like a credential value, its AAD naming the exchange
 * id, the owner and the time it is kept until, so a sealed outcome cannot be
 * handed to another code or another client.
 */
export class SqliteExchangeLedger implements ExchangeLedger {
  readonly #file: SqliteFile;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #cipher: ValueCipher | undefined;
  readonly #acceptPlaintextUntil: number | undefined;
  readonly #sweep: Database.Statement<[number]>;
  readonly #read: Database.Statement<[string], ExchangeRow>;
  readonly #claim: Database.Statement<[string, string, number]>;
  readonly #settle: Database.Statement<[string, string, string, number]>;
  readonly #release: Database.Statement<[string, string]>;
  readonly #forget: Database.Statement<[string]>;

  constructor(o: SqliteExchangeLedgerOptions) {
    this.#file = o.file;
    this.#clock = o.clock;
    this.#logger = o.logger.child({ component: "sqlite-exchange-ledger" });
    this.#cipher = o.cipher;
    this.#acceptPlaintextUntil = o.acceptPlaintextUntil;
    const db = o.file.db;
    this.#sweep = db.prepare("DELETE FROM exchanges WHERE until <= ?");
    this.#read = db.prepare("SELECT owner, outcome, until FROM exchanges WHERE id = ?");
    this.#claim = db.prepare(
      "INSERT INTO exchanges (id, owner, outcome, until) VALUES (?, ?, NULL, ?)",
    );
    this.#settle = db.prepare(
      "INSERT OR REPLACE INTO exchanges (id, owner, outcome, until) VALUES (?, ?, ?, ?)",
    );
    this.#release = db.prepare(
      "DELETE FROM exchanges WHERE id = ? AND owner = ? AND outcome IS NULL",
    );
    this.#forget = db.prepare("DELETE FROM exchanges WHERE id = ?");
  }

  async claim(id: string, owner: string, claimTtlMs: number): Promise<ExchangeClaim> {
    return this.#call("claim", () =>
      this.#file.db
        .transaction((): ExchangeClaim => {
          const now = this.#clock.now();
          this.#sweep.run(now);
          const row = this.#read.get(id);
          if (row && row.outcome !== null) {
            const outcome = this.#open(id, row, row.outcome);
            if (outcome !== undefined) return { state: "settled", owner: row.owner, outcome };
            this.#forget.run(id); // refused: unreadable, so claimable again
          } else if (row) return { state: "pending" };
          this.#claim.run(id, owner, now + claimTtlMs);
          return { state: "claimed" };
        })
        .immediate(),
    );
  }

  async settle(id: string, owner: string, outcome: string, keepMs: number): Promise<void> {
    this.#call("settle", () => {
      const until = this.#clock.now() + keepMs;
      const stored = this.#cipher
        ? this.#cipher.encrypt(outcome, exchangeAad(id), bindingOf(owner, until))
        : outcome;
      this.#settle.run(id, owner, stored, until);
    });
  }

  async release(id: string, owner: string): Promise<void> {
    this.#call("release", () => this.#release.run(id, owner));
  }

  /** The outcome in the clear; undefined when it is plaintext under keys (logged). */
  #open(id: string, row: ExchangeRow, stored: string): string | undefined {
    if (isSealedValue(stored)) {
      if (!this.#cipher)
        throw new Error(
          `exchange outcome ${id} is encrypted but no encryption keys are configured`,
        );
      return this.#cipher.decrypt(stored, exchangeAad(id), bindingOf(row.owner, row.until));
    }
    if (!this.#cipher) return stored;
    const open =
      this.#acceptPlaintextUntil !== undefined && this.#clock.now() < this.#acceptPlaintextUntil;
    if (!open)
      this.#logger.error(
        { exchange: id },
        "refused an exchange outcome stored unencrypted while encryption keys are configured",
      );
    return open ? stored : undefined;
  }

  #call<T>(what: string, run: () => T): T {
    if (this.#file.closed) throw new Error("the SQLite exchange ledger is closed");
    return sqliteCall(`code exchange ${what}`, this.#file.path, run);
  }
}

/** The AAD's id part: exchange ids are digests, kept apart from credential ids by the prefix. */
function exchangeAad(id: string): string {
  return `exchange/${id}`;
}

/** JSON, so no owner's text can make two bindings read alike. */
function bindingOf(owner: string, until: number): string {
  return JSON.stringify({ owner, until });
}
