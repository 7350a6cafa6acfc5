import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import type { ValueCipher } from "../sealing/value-cipher.js";
import { SqliteExchangeLedger } from "./sqlite-exchange-ledger.js";
import { SqliteFile } from "./sqlite-file.js";
import { SqliteTokenStore } from "./sqlite-token-store.js";

export interface SqliteStores {
  readonly store: SqliteTokenStore;
  readonly exchangeLedger: SqliteExchangeLedger;
  /** Closes the store, then the file (releasing its lock). */
  close(): Promise<void>;
}

/**
 * Opens the single node's SQLite file (locking it for this process) with the
 * token store and the exchange ledger on it. Throws at once when the file is
 * another process's or not a broker store. Says at open when values and
 * states will be stored unencrypted.
 */
export function openSqliteStores(o: {
  readonly path: string;
  readonly retentionMs?: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly cipher?: ValueCipher | undefined;
  readonly acceptPlaintextUntil?: number | undefined;
}): SqliteStores {
  const file = SqliteFile.open(o.path, o.logger);
  if (!o.cipher)
    o.logger.warn(
      { file: file.path },
      "token values and refresh tokens are stored in the SQLite file unencrypted; set security.encryptionKeys",
    );
  else if (o.acceptPlaintextUntil !== undefined)
    o.logger.warn(
      { until: new Date(o.acceptPlaintextUntil).toISOString() },
      "values stored unencrypted are still read until security.acceptPlaintextUntil; remove it once every credential has been refreshed",
    );
  const sealing = { cipher: o.cipher, acceptPlaintextUntil: o.acceptPlaintextUntil };
  let store: SqliteTokenStore;
  let exchangeLedger: SqliteExchangeLedger;
  try {
    store = new SqliteTokenStore({
      file,
      clock: o.clock,
      logger: o.logger,
      ...sealing,
      ...(o.retentionMs === undefined ? {} : { retentionMs: o.retentionMs }),
    });
    exchangeLedger = new SqliteExchangeLedger({
      file,
      clock: o.clock,
      logger: o.logger,
      ...sealing,
    });
  } catch (err) {
    file.close();
    throw err;
  }
  return {
    store,
    exchangeLedger,
    async close() {
      await store.close();
      file.close();
    },
  };
}
