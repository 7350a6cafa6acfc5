/**
 * Bytes per grant in Redis: N users' grants written through RedisTokenStore
 * (sealed, as production should run), measured by the server's used_memory
 * and by MEMORY USAGE of sampled keys, next to app access-token records
 * written the same way (the baseline).
 */
import { Redis } from "ioredis";
import type { CredentialKey, NewCredential } from "../src/core/credential.js";
import { silentLogger } from "../src/shared/logger.js";
import { connectRedis, parseRedisUrl, type RedisClient } from "../src/store/redis/connection.js";
import { RedisKeys } from "../src/store/redis/keys.js";
import { RedisTokenStore } from "../src/store/redis/redis-token-store.js";
import { parseEncryptionKeys, ValueCipher } from "../src/store/sealing/value-cipher.js";
import { appKey, appToken, userGrant, userKey, writeAll } from "./grant-records.js";

/** Writes in flight at once: enough to fill pipelines, little enough for ioredis's 2 s command timeout. */
const WINDOW = 256;
/**
 * Records written per store instance. Each instance re-reads every write it
 * hears and remembers the last record it delivered per credential
 * (HintRereader), so a fresh one per chunk keeps this process's heap small.
 */
const CHUNK = 100_000;
/** Keys whose MEMORY USAGE is read. */
const SAMPLE = 1000;

export interface RedisBytes {
  readonly records: number;
  /** used_memory after minus before, per record. */
  readonly usedMemoryPerRecord: number;
  /** Mean MEMORY USAGE (SAMPLES 0) of sampled keys. */
  readonly memoryUsagePerKey: number;
  /** OBJECT ENCODING of the first key. */
  readonly encoding: string;
  readonly writeSeconds: number;
  /** redis-server's CPU time (user + system) while writing. */
  readonly redisCpuSeconds: number;
  /** This process's CPU time while writing (sealing; the store's re-reads of its own hints). */
  readonly writerCpuSeconds: number;
}

export interface RedisGrantsResult {
  readonly grants: RedisBytes;
  readonly apps: RedisBytes;
  /** redis_version of the server. */
  readonly version: string;
}

interface Target {
  readonly url: string;
  readonly keys: RedisKeys;
  readonly cipher: ValueCipher;
  /** A plain connection for INFO, DBSIZE and MEMORY USAGE. */
  readonly admin: RedisClient;
}

/** A store as production builds it (createStore), with auto-pipelining on its client. */
function openStore(t: Target): RedisTokenStore {
  const client = connectRedis(parseRedisUrl(t.url), { connectionName: "bench-grants" });
  // Commands issued in one tick leave in one socket write: the batching a bulk import would use.
  if (client instanceof Redis) client.options.enableAutoPipelining = true;
  return new RedisTokenStore({ client, keys: t.keys, logger: silentLogger(), cipher: t.cipher });
}

async function info(admin: RedisClient, section: string, field: string): Promise<number> {
  const text = String(await admin.call("INFO", section));
  const m = new RegExp(`${field}:([\\d.]+)`).exec(text);
  if (!m?.[1]) throw new Error(`INFO ${section} has no ${field}`);
  return Number(m[1]);
}

async function redisCpu(admin: RedisClient): Promise<number> {
  return (await info(admin, "cpu", "used_cpu_user")) + (await info(admin, "cpu", "used_cpu_sys"));
}

/** used_memory once it stops moving (pub/sub buffers drained, no rehash under way). */
async function settledMemory(admin: RedisClient): Promise<number> {
  let last = await info(admin, "memory", "used_memory");
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await info(admin, "memory", "used_memory");
    if (Math.abs(now - last) < 4096) return now;
    last = now;
  }
  return last;
}

async function writeRecords(
  t: Target,
  from: number,
  to: number,
  keyOf: (i: number) => CredentialKey,
  recordOf: (i: number, now: number) => NewCredential,
  log: (line: string) => void,
): Promise<void> {
  for (let start = from; start < to; start += CHUNK) {
    const store = openStore(t);
    const end = Math.min(to, start + CHUNK);
    try {
      await store.subscribed();
      await writeAll(start, end, WINDOW, async (i) => {
        const result = await store.compareAndSet(keyOf(i), 0, 0, recordOf(i, Date.now()));
        if (!result.written) throw new Error(`record ${i} was not written (${result.reason})`);
      });
    } finally {
      await store.close();
    }
    if (to - from > CHUNK) log(`grants: redis ${(end - from).toLocaleString("en-US")} written`);
  }
}

async function measure(
  t: Target,
  count: number,
  keyOf: (i: number) => CredentialKey,
  recordOf: (i: number, now: number) => NewCredential,
  log: (line: string) => void,
): Promise<RedisBytes> {
  const { admin } = t;
  const keysBefore = Number(await admin.dbsize());
  const before = await settledMemory(admin);
  const redisCpu0 = await redisCpu(admin);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await writeRecords(t, 0, count, keyOf, recordOf, log);
  const writeSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const redisCpuSeconds = (await redisCpu(admin)) - redisCpu0;
  const after = await settledMemory(admin);
  const added = Number(await admin.dbsize()) - keysBefore;
  if (added !== count) throw new Error(`expected ${count} new keys in Redis, found ${added}`);
  const step = Math.max(1, Math.floor(count / SAMPLE));
  let total = 0;
  let sampled = 0;
  for (let i = 0; i < count; i += step) {
    const key = t.keys.credential(keyOf(i));
    total += Number(await admin.call("MEMORY", "USAGE", key, "SAMPLES", "0"));
    sampled++;
  }
  return {
    records: count,
    usedMemoryPerRecord: (after - before) / count,
    memoryUsagePerKey: total / sampled,
    encoding: String(await admin.call("OBJECT", "ENCODING", t.keys.credential(keyOf(0)))),
    writeSeconds,
    redisCpuSeconds,
    writerCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Where the grants go: the bench's redis-server, the broker's prefix and encryption key. */
export interface RedisPlace {
  readonly url: string;
  readonly prefix: string;
  readonly encryptionKey: { id: string; key: string };
}

function target(o: RedisPlace): Target {
  return {
    url: o.url,
    keys: new RedisKeys(o.prefix),
    cipher: new ValueCipher(parseEncryptionKeys([o.encryptionKey])),
    admin: connectRedis(parseRedisUrl(o.url), { connectionName: "bench-admin" }),
  };
}

/** Writes users [from, to)'s grants, as another replica's code exchanges would. */
export async function writeUserGrants(
  o: RedisPlace & { from: number; to: number; log: (line: string) => void },
): Promise<void> {
  const t = target(o);
  try {
    await writeRecords(t, o.from, o.to, userKey, userGrant, o.log);
  } finally {
    await t.admin.quit();
  }
}

/**
 * Writes `apps` app access tokens, then `grants` users' grants, each a first
 * write (expected version 0, fence 0, as a code exchange makes), and
 * measures what each costs Redis. The grants stay for the broker child.
 */
export async function measureRedisGrants(
  o: RedisPlace & { grants: number; apps: number; log: (line: string) => void },
): Promise<RedisGrantsResult> {
  const t = target(o);
  const { admin } = t;
  try {
    const apps = await measure(t, o.apps, appKey, appToken, o.log);
    o.log(`grants: redis ${o.apps} app records in ${apps.writeSeconds.toFixed(1)} s`);
    const grants = await measure(t, o.grants, userKey, userGrant, o.log);
    o.log(`grants: redis ${o.grants} grants in ${grants.writeSeconds.toFixed(1)} s`);
    const server = String(await admin.call("INFO", "server"));
    return { grants, apps, version: /redis_version:(\S+)/.exec(server)?.[1] ?? "unknown" };
  } finally {
    await admin.quit();
  }
}
