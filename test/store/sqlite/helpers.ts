import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import type { NewCredential } from "../../../src/core/credential.js";
import type { Clock } from "../../../src/shared/clock.js";
import { type Logger, silentLogger } from "../../../src/shared/logger.js";
import { type EncryptionKey, ValueCipher } from "../../../src/store/sealing/value-cipher.js";
import {
  openSqliteStores,
  type SqliteStores,
} from "../../../src/store/sqlite/open-sqlite-stores.js";
import { recordLeakCandidate } from "../../helpers/leak-recorder.js";

export const T0 = Date.UTC(2026, 0, 1, 4, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const next = (value: string, extra: Partial<NewCredential> = {}): NewCredential => ({
  value,
  fetchedAt: T0,
  expiresAt: T0 + 2 * HOUR,
  ...extra,
});

/** A token-shaped value nobody else uses; the suite-wide leak scan looks for it in logs. */
export function secretLike(label: string, kind: "access_token" | "refresh_token"): string {
  const value = `${label}_${randomBytes(24).toString("base64url")}`;
  recordLeakCandidate(kind, value);
  return value;
}

/** A cipher with a fresh key (recorded for the leak scan). */
export function freshCipher(id = "k1"): ValueCipher {
  const key: EncryptionKey = { id, key: randomBytes(32) };
  recordLeakCandidate("secret", key.key.toString("base64"));
  return new ValueCipher([key]);
}

/**
 * A folder of its own per test, removed after it, and every store opened
 * in it closed first (releasing the file's lock).
 */
export function sqliteSandbox(): {
  dir: () => string;
  open: (o?: {
    path?: string;
    clock?: Clock;
    logger?: Logger;
    cipher?: ValueCipher;
    acceptPlaintextUntil?: number;
    retentionMs?: number;
  }) => SqliteStores;
} {
  let dir: string | undefined;
  const opened: SqliteStores[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const folder = () => {
    dir ??= mkdtempSync(join(tmpdir(), "broker-sqlite-"));
    return dir;
  };
  return {
    dir: folder,
    open(o = {}) {
      const stores = openSqliteStores({
        path: o.path ?? join(folder(), "broker.db"),
        clock: o.clock ?? { now: () => T0, schedule: () => () => {} },
        logger: o.logger ?? silentLogger(),
        cipher: o.cipher,
        acceptPlaintextUntil: o.acceptPlaintextUntil,
        ...(o.retentionMs === undefined ? {} : { retentionMs: o.retentionMs }),
      });
      opened.push(stores);
      return stores;
    },
  };
}

/** Every byte SQLite keeps for `path`: the file and its write-ahead log, if any. */
export function rawBytes(path: string): Buffer {
  const parts = [path, `${path}-wal`, `${path}-journal`].flatMap((p) => {
    try {
      return [readFileSync(p)];
    } catch {
      return [];
    }
  });
  return Buffer.concat(parts);
}
