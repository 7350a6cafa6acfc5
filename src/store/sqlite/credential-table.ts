import type Database from "better-sqlite3";
import type { CredentialRow } from "./row-codec.js";

/**
 * The SQL of the token store, prepared once: rows of `credentials` and
 * `tombstones` (schema.ts). Plain reads and writes; the token store decides
 * (versions, fences, restore) and wraps them in transactions.
 */
export class CredentialTable {
  readonly #read: Database.Statement<[string], CredentialRow>;
  readonly #put: Database.Statement<[CredentialRow]>;
  readonly #remove: Database.Statement<[string]>;
  readonly #putAside: Database.Statement<[string]>;
  readonly #tombstone: Database.Statement<[string], number>;
  readonly #bury: Database.Statement<[string, number, number]>;
  readonly #unbury: Database.Statement<[string]>;
  readonly #page: Database.Statement<[string, string, number], CredentialRow>;
  readonly #purgeRows: Database.Statement<[number]>;
  readonly #purgeTombstones: Database.Statement<[number]>;

  constructor(db: Database.Database) {
    this.#read = db.prepare("SELECT * FROM credentials WHERE id = ?");
    this.#put = db.prepare(
      `INSERT OR REPLACE INTO credentials
         (id, kind, version, fetched_at, expires_at, previous_valid_until, renewable_until, value, state, keep_until)
       VALUES (@id, @kind, @version, @fetched_at, @expires_at, @previous_valid_until, @renewable_until, @value, @state, @keep_until)`,
    );
    this.#remove = db.prepare("DELETE FROM credentials WHERE id = ?");
    // A refused grant is kept under another id (out of every key's way) for an operator.
    this.#putAside = db.prepare(
      "UPDATE OR REPLACE credentials SET id = id || '#refused', kind = kind || '#refused' WHERE id = ?",
    );
    this.#tombstone = db
      .prepare<[string], number>("SELECT version FROM tombstones WHERE id = ?")
      .pluck();
    this.#bury = db.prepare(
      "INSERT OR REPLACE INTO tombstones (id, version, keep_until) VALUES (?, ?, ?)",
    );
    this.#unbury = db.prepare("DELETE FROM tombstones WHERE id = ?");
    this.#page = db.prepare(
      "SELECT * FROM credentials WHERE kind = ? AND id > ? ORDER BY id LIMIT ?",
    );
    this.#purgeRows = db.prepare("DELETE FROM credentials WHERE keep_until <= ?");
    this.#purgeTombstones = db.prepare("DELETE FROM tombstones WHERE keep_until <= ?");
  }

  read(id: string): CredentialRow | undefined {
    return this.#read.get(id);
  }

  /** Writes the row whole (a field it lacks is removed): the caller has checked the version. */
  put(row: CredentialRow): void {
    this.#put.run(row);
  }

  /** Keeps a refused row holding a grant under `<id>#refused` (purged with its keep_until). */
  putAside(id: string): void {
    this.#putAside.run(id);
  }

  remove(id: string): void {
    this.#remove.run(id);
  }

  /** The version of the credential last deleted under `id`, 0 when none. */
  deletedVersion(id: string): number {
    return this.#tombstone.get(id) ?? 0;
  }

  bury(id: string, version: number, keepUntil: number): void {
    this.#bury.run(id, version, keepUntil);
  }

  /** A credential written again is numbered above its tombstone, which it then replaces. */
  unbury(id: string): void {
    this.#unbury.run(id);
  }

  /** Up to `limit` rows of `kind` with ids after `after`, in id order (a page of `entries`). */
  page(kind: string, after: string, limit: number): CredentialRow[] {
    return this.#page.all(kind, after, limit);
  }

  /** Deletes rows and tombstones kept until `now` or earlier; returns how many rows went. */
  purge(now: number): number {
    const rows = this.#purgeRows.run(now).changes;
    this.#purgeTombstones.run(now);
    return rows;
  }
}
