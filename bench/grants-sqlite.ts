/**
 * Bytes per grant in the embedded store: users' grants written through
 * SqliteTokenStore (openSqliteStores, sealed) into a file of their own, its
 * size after the close's checkpoint divided by the count, next to a file of
 * app access-token records written the same way (the baseline). Each size is
 * taken above an empty store's file (the schema's pages).
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CredentialKey, NewCredential } from "../src/core/credential.js";
import { systemClock } from "../src/shared/clock.js";
import { silentLogger } from "../src/shared/logger.js";
import { parseEncryptionKeys, ValueCipher } from "../src/store/sealing/value-cipher.js";
import { openSqliteStores } from "../src/store/sqlite/open-sqlite-stores.js";
import { appKey, appToken, userGrant, userKey } from "./grant-records.js";

export interface SqliteBytes {
  readonly records: number;
  /** (file size after checkpoint − an empty store's) / records. */
  readonly bytesPerRecord: number;
  readonly fileBytes: number;
  readonly writeSeconds: number;
}

export interface SqliteGrantsResult {
  readonly grants: SqliteBytes;
  readonly apps: SqliteBytes;
  /** The folder the files were in (what its fsyncs cost depends on it). */
  readonly dir: string;
}

/** Writes `count` records into a new store file; returns its size once closed (checkpointed, no WAL left). */
async function writeFile(
  path: string,
  cipher: ValueCipher,
  count: number,
  keyOf: (i: number) => CredentialKey,
  recordOf: (i: number, now: number) => NewCredential,
): Promise<{ bytes: number; seconds: number }> {
  const stores = openSqliteStores({ path, clock: systemClock, logger: silentLogger(), cipher });
  const started = performance.now();
  try {
    // One at a time: better-sqlite3 is synchronous, each write its own committed transaction.
    for (let i = 0; i < count; i++) {
      const result = await stores.store.compareAndSet(keyOf(i), 0, 0, recordOf(i, Date.now()));
      if (!result.written) throw new Error(`record ${i} was not written (${result.reason})`);
    }
  } finally {
    await stores.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return { bytes: (await stat(path)).size, seconds };
}

export async function measureSqliteGrants(o: {
  encryptionKey: { id: string; key: string };
  grants: number;
  apps: number;
  /** Where the files go; a temporary folder under the OS's by default. */
  dir?: string;
  log: (line: string) => void;
}): Promise<SqliteGrantsResult> {
  const dir = await mkdtemp(join(o.dir ?? tmpdir(), "bench-grants-sqlite-"));
  const cipher = new ValueCipher(parseEncryptionKeys([o.encryptionKey]));
  try {
    const empty = await writeFile(join(dir, "empty.db"), cipher, 0, appKey, appToken);
    const measure = async (
      name: string,
      count: number,
      keyOf: (i: number) => CredentialKey,
      recordOf: (i: number, now: number) => NewCredential,
    ): Promise<SqliteBytes> => {
      const file = await writeFile(join(dir, `${name}.db`), cipher, count, keyOf, recordOf);
      o.log(`grants: sqlite ${count} ${name} in ${file.seconds.toFixed(1)} s`);
      return {
        records: count,
        bytesPerRecord: (file.bytes - empty.bytes) / count,
        fileBytes: file.bytes,
        writeSeconds: file.seconds,
      };
    };
    const apps = await measure("apps", o.apps, appKey, appToken);
    const grants = await measure("grants", o.grants, userKey, userGrant);
    return { grants, apps, dir: o.dir ?? tmpdir() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
