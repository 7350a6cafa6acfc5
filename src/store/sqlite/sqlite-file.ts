import { closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type { StoreDurability } from "../../core/ports/token-store.js";
import type { Logger } from "../../shared/logger.js";
import { migrate } from "./schema.js";

/** How long opening waits for another connection's lock (a previous broker still exiting). */
const OPEN_WAIT_MS = 1000;

/** What `PRAGMA synchronous` answers, by number. */
const SYNCHRONOUS = ["OFF", "NORMAL", "FULL", "EXTRA"] as const;

/**
 * The broker's SQLite file, opened for one process: the single-node durable
 * store's credentials and code exchanges live in it (SqliteTokenStore,
 * SqliteExchangeLedger share the connection).
 *
 * - `locking_mode=EXCLUSIVE`: the first write takes the file's lock and keeps
 *   it until close, so a second broker on the same file is refused at open
 *   (SQLITE_BUSY) instead of both writing and neither hearing the other's
 *   writes. The lock is the operating system's: it goes with the process,
 *   a crashed broker leaves none behind.
 * - `journal_mode=WAL`: a commit appends to the write-ahead log; a crash
 *   mid-write leaves the last committed state (recovered at the next open).
 * - `synchronous=FULL`: every commit fsyncs the log before it is
 *   acknowledged, so a power loss keeps every write the broker acknowledged.
 *   (NORMAL would fsync only at checkpoints: a power loss could lose the last
 *   refreshes and, worse, a grant, which cannot be re-fetched. The cost is an
 *   fsync per credential write, and credentials are written a few times per
 *   2 hours each.)
 * - `secure_delete`: deleted rows are overwritten, so a forgotten grant's
 *   (sealed) refresh token does not linger in free pages.
 */
export class SqliteFile {
  readonly db: Database.Database;
  /** The file's absolute path, for messages. */
  readonly path: string;
  #closed = false;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
  }

  /**
   * Opens (creating it, and its folder, if needed) the file at `path`,
   * relative to the working directory. Throws, naming the file, when another
   * process holds it or it is not a token broker store.
   */
  static open(path: string, logger: Logger): SqliteFile {
    const file = resolve(path);
    prepareFile(file, logger);
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: OPEN_WAIT_MS });
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("secure_delete = ON");
      // A write now takes the exclusive lock, held until close.
      migrate(db, file);
      return new SqliteFile(db, file);
    } catch (err) {
      db?.close();
      if ((err as { code?: unknown }).code === "SQLITE_BUSY")
        throw new Error(
          `the SQLite store ${file} is in use by another process: one broker process owns the file (run replicas on the Redis store)`,
        );
      throw err;
    }
  }

  /** Whether acknowledged writes survive a crash or power loss, by the settings SQLite reports in force. */
  durability(): StoreDurability {
    const journalMode = String(this.db.pragma("journal_mode", { simple: true }));
    const level = Number(this.db.pragma("synchronous", { simple: true }));
    const synchronous = SYNCHRONOUS[level] ?? String(level);
    const durable =
      ["wal", "delete", "truncate", "persist"].includes(journalMode) &&
      (synchronous === "FULL" || synchronous === "EXTRA");
    return {
      durable,
      detail: durable
        ? `SQLite file ${this.path} (journal_mode=${journalMode}, synchronous=${synchronous}): each write is on disk before it is acknowledged; this process holds the file's lock`
        : `SQLite file ${this.path} runs with journal_mode=${journalMode}, synchronous=${synchronous}: a crash or power loss may lose acknowledged writes`,
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Checkpoints the log into the file and releases the lock. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }
}

/**
 * Creates the folder (0700) and an empty file (0600) when absent: SQLite
 * gives its log the file's mode, so neither is readable by other users.
 * Warns about an existing file other users may read.
 */
function prepareFile(file: string, logger: Logger): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, "a", 0o600));
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0)
    logger.warn(
      { file, mode: mode.toString(8) },
      "the SQLite store is readable by other users of this machine; chmod 600 it",
    );
}
