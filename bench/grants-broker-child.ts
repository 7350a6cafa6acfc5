/**
 * The broker under test for the grants benchmark, in a process of its own so
 * its heap is read alone: the production startBroker (buildCore inside) in
 * front of the emulator, on the Redis store the parent filled with grants,
 * with the same encryption key and `cache.maxUserTokens`. Run as
 * `node --expose-gc bench/grants-broker-child.js` with an IPC channel and
 * GRANTS_REDIS_URL, GRANTS_PREFIX, GRANTS_KEY_ID, GRANTS_KEY and
 * GRANTS_MAX_USERS in the environment.
 */
import { startBroker } from "../src/broker.js";
import { parseConfig } from "../src/config/parse-config.js";
import { createEmulator } from "../src/emulator/index.js";
import { silentLogger } from "../src/shared/logger.js";
import { GRANTS_APP, USER_KIND } from "./grant-records.js";
import {
  type ChildMessage,
  type MemorySample,
  type Reply,
  serveRequests,
} from "./grants-protocol.js";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const emulator = createEmulator({
  apps: [{ appid: GRANTS_APP.appid, secret: GRANTS_APP.secret }],
});
const { url: emulatorUrl } = await emulator.listen(0, "127.0.0.1");
const config = parseConfig(
  {
    listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0" },
    upstream: { baseUrl: emulatorUrl, timeoutMs: 2000 },
    shutdown: { graceMs: 500 },
    store: { type: "redis", url: env("GRANTS_REDIS_URL"), prefix: env("GRANTS_PREFIX") },
    security: { encryptionKeys: [{ id: env("GRANTS_KEY_ID"), key: { env: "GRANTS_KEY" } }] },
    cache: { maxUserTokens: Number(env("GRANTS_MAX_USERS")) },
    apps: [
      {
        id: GRANTS_APP.id,
        appid: GRANTS_APP.appid,
        type: "official_account",
        secret: { env: "GRANTS_APP_SECRET" },
      },
    ],
  },
  {
    env: { GRANTS_KEY: env("GRANTS_KEY"), GRANTS_APP_SECRET: GRANTS_APP.secret },
    readFile: () => "",
  },
);
const broker = await startBroker(config, { logger: silentLogger(), audit: silentLogger() });

// Users' writes this replica has heard from the store since it started (the other writer's grants).
let heard = 0;
const heardWaiters = new Set<() => void>();
broker.core.stores.store.subscribe((update) => {
  if (update.key.kind !== USER_KIND) return;
  heard++;
  for (const wake of heardWaiters) wake();
});

async function sample(): Promise<MemorySample> {
  const gc = globalThis.gc;
  if (!gc) throw new Error("run with --expose-gc");
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, held: broker.manager.userTokensHeld };
}

/** Resolves once `count` users' writes were heard; rejects when none arrives for 30 s. */
function untilHeard(count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      clearTimeout(timer);
      if (heard >= count) {
        heardWaiters.delete(check);
        resolve(heard);
        return;
      }
      timer = setTimeout(() => {
        heardWaiters.delete(check);
        reject(new Error(`heard ${heard} of ${count} users' writes, then nothing for 30 s`));
      }, 30_000);
    };
    heardWaiters.add(check);
    check();
  });
}

serveRequests(
  async (request): Promise<Reply> => {
    if (request.type === "memory") return { type: "memory", sample: await sample() };
    if (request.type === "heard") return { type: "heard", heard: await untilHeard(request.count) };
    throw new Error(`the broker child does not run ${request.type}`);
  },
  async () => {
    await broker.close();
    await emulator.close();
  },
);
process.send?.({ type: "ready", port: broker.grpc.port } satisfies ChildMessage);
