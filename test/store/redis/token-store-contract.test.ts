import { afterAll, beforeAll, describe } from "vitest";
import type { TokenStore } from "../../../src/core/ports/token-store.js";
import { MemoryTokenStore } from "../../../src/store/memory-store.js";
import { type RedisServer, startRedisServer } from "../../helpers/redis-server.js";
import { tokenStoreContract } from "../token-store-contract.js";
import { freshKeys, openStore } from "./helpers.js";

/** The shared TokenStore contract (../token-store-contract.ts) on the memory store and on Redis. */

let server: RedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

const factories: Array<[string, () => Promise<TokenStore>]> = [
  ["MemoryTokenStore", async () => new MemoryTokenStore()],
  ["RedisTokenStore", () => openStore(server.url, freshKeys(), "contract")],
];

describe.each(factories)("%s", (_name, open) => tokenStoreContract(open));
