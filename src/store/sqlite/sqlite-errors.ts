import { StoreUnavailableError } from "../../shared/errors.js";

/**
 * Result codes that mean "not now" rather than "never": the disk is full or
 * failing, the file is locked or gone read-only. Callers then serve what
 * they hold, as when Redis is unreachable.
 */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|PROTOCOL)/;

/**
 * Runs one SQLite call. SQLite's own errors are rethrown without `cause`
 * and naming the file; their messages never hold bound values (a token, a
 * state). Anything else (a RangeError, a ValueDecryptionError) passes as is.
 */
export function sqliteCall<T>(what: string, file: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (!(err instanceof Error) || err.name !== "SqliteError" || typeof code !== "string")
      throw err;
    if (UNAVAILABLE.test(code))
      throw new StoreUnavailableError(
        `the SQLite store ${file} failed a ${what}: ${err.message} (${code})`,
      );
    throw new Error(`the SQLite store ${file} refused a ${what}: ${err.message} (${code})`);
  }
}
