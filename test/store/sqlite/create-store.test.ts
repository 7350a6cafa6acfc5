import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../../../src/config/parse-config.js";
import { createStore } from "../../../src/create-store.js";
import { MemoryQuotaLedger } from "../../../src/quota/index.js";
import { Secret } from "../../../src/shared/secret.js";
import { LocalDueQueue } from "../../../src/store/memory/local-due-queue.js";
import { LocalRefreshLock } from "../../../src/store/memory/local-refresh-lock.js";
import { SqliteExchangeLedger } from "../../../src/store/sqlite/sqlite-exchange-ledger.js";
import { SqliteTokenStore } from "../../../src/store/sqlite/sqlite-token-store.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { captureLogger } from "../redis/helpers.js";
import { next, rawBytes, secretLike, sqliteSandbox, T0 } from "./helpers.js";

const environment = { env: {}, readFile: () => "" };
const APPS = "apps: [{ id: shop, appid: wx0000000000000001, secret: { env: S } }]\n";
const sandbox = sqliteSandbox();

describe("store: { type: sqlite }", () => {
  it("is read from the config with its defaults; a path is required and must be a file", () => {
    const config = parseConfig(parse(`${APPS}store: { type: sqlite, path: ./data/broker.db }`), {
      ...environment,
      env: { S: "s" },
    });
    expect(config.store).toEqual({
      type: "sqlite",
      path: "./data/broker.db",
      retentionMs: 86_400_000,
    });
    const env = { ...environment, env: { S: "s" } };
    expect(() => parseConfig(parse(`${APPS}store: { type: sqlite }`), env)).toThrow(
      /'store.path': is required/,
    );
    expect(() =>
      parseConfig(parse(`${APPS}store: { type: sqlite, path: ':memory:' }`), env),
    ).toThrow(/'store.path': expected a file path/);
  });

  it("builds the durable store and exchange ledger on the file, the rest in memory, sealed with the configured keys", async () => {
    const path = join(sandbox.dir(), "data", "broker.db");
    const capture = captureLogger();
    const key = randomBytes(32).toString("base64");
    const bundle = createStore(
      { type: "sqlite", path, retentionMs: 86_400_000 },
      {
        clock: new FakeClock(T0),
        logger: capture.logger,
        encryptionKeys: [{ id: "k1", key: new Secret(key) }],
      },
    );
    try {
      expect(bundle.store).toBeInstanceOf(SqliteTokenStore);
      expect(bundle.exchangeLedger).toBeInstanceOf(SqliteExchangeLedger);
      expect(bundle.lock).toBeInstanceOf(LocalRefreshLock);
      expect(bundle.dueQueue).toBeInstanceOf(LocalDueQueue);
      expect(bundle.ledger).toBeInstanceOf(MemoryQuotaLedger);
      await bundle.ready();
      const value = secretLike("bundle_at", "access_token");
      await bundle.store.compareAndSet({ appId: "shop", kind: "access_token" }, 0, 1, next(value));
      expect(rawBytes(path).includes(value)).toBe(false);
      expect(capture.text()).not.toMatch(/unencrypted/);
    } finally {
      await bundle.close();
    }
    // Closing released the file: another store opens it and reads the credential.
    const reopened = createStore(
      { type: "sqlite", path, retentionMs: 86_400_000 },
      {
        clock: new FakeClock(T0),
        logger: capture.logger,
        encryptionKeys: [{ id: "k1", key: new Secret(key) }],
      },
    );
    expect(await reopened.store.get({ appId: "shop", kind: "access_token" })).toMatchObject({
      version: 1,
    });
    await reopened.close();
  });
});
