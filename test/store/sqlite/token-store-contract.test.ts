import { join } from "node:path";
import { describe } from "vitest";
import type { TokenStore } from "../../../src/core/ports/token-store.js";
import { tokenStoreContract } from "../token-store-contract.js";
import { freshCipher, sqliteSandbox } from "./helpers.js";

/** The shared TokenStore contract (../token-store-contract.ts) on the SQLite store, plain and sealed. */

const sandbox = sqliteSandbox();
let files = 0;
const file = () => join(sandbox.dir(), `contract-${++files}.db`);

const factories: Array<[string, () => Promise<TokenStore>]> = [
  ["SqliteTokenStore", async () => sandbox.open({ path: file() }).store],
  [
    "SqliteTokenStore with encryption keys",
    async () => sandbox.open({ path: file(), cipher: freshCipher() }).store,
  ],
];

describe.each(factories)("%s", (_name, open) => tokenStoreContract(open));
