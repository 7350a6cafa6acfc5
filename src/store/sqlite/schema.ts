import type Database from "better-sqlite3";

/** Marks the file as this broker's ("WTKB"), so another application's database is never written to. */
const APPLICATION_ID = 0x57544b42;
/** The layout below; a file written by a later release (a higher number) is refused. */
export const SCHEMA_VERSION = 1;

/**
 * One row per credential, keyed by keyId(key). Times are epoch ms. `value`
 * and `state` hold what the codec wrote (sealed when keys are configured).
 * `keep_until` is when the row may be purged: max(expiresAt, renewableUntil)
 * plus the retention. A tombstone keeps a deleted credential's version, so a
 * credential written again is numbered above it and a replica's copy is not
 * restored over the delete. A code exchange is a claim (no outcome) or its
 * settled outcome, until `until`.
 */
const LAYOUT = `
CREATE TABLE credentials (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  version INTEGER NOT NULL,
  fetched_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  previous_valid_until INTEGER,
  renewable_until INTEGER,
  value TEXT NOT NULL,
  state TEXT,
  keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX credentials_by_kind ON credentials (kind, id);
CREATE INDEX credentials_by_keep ON credentials (keep_until);
CREATE TABLE tombstones (
  id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tombstones_by_keep ON tombstones (keep_until);
CREATE TABLE exchanges (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  outcome TEXT,
  until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX exchanges_by_until ON exchanges (until);
`;

/**
 * Creates the tables in a new file, or checks an existing file is this
 * broker's at a version this release reads. `file` names it in messages.
 */
export function migrate(db: Database.Database, file: string): void {
  db.transaction(() => {
    const appId = Number(db.pragma("application_id", { simple: true }));
    const version = Number(db.pragma("user_version", { simple: true }));
    if (appId === 0 && version === 0) {
      const tables = Number(
        db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get(),
      );
      if (tables > 0)
        throw new Error(`${file} is an SQLite database of another application; refusing to use it`);
      db.exec(LAYOUT);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return;
    }
    if (appId !== APPLICATION_ID)
      throw new Error(`${file} is an SQLite database of another application; refusing to use it`);
    if (version > SCHEMA_VERSION)
      throw new Error(
        `${file} was written by a later release (store layout ${version}; this release reads up to ${SCHEMA_VERSION})`,
      );
  }).immediate();
}
