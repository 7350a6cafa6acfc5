import { Cluster, type Redis } from "ioredis";
import type { CredentialKey } from "../../core/credential.js";
import { keyId } from "../../core/credential.js";
import type { RedisClient } from "./connection.js";
import type { RedisKeys } from "./keys.js";

/** Keys SCAN looks at per call: large enough to be quick, small enough not to block Redis. */
const SCAN_COUNT = 500;

/**
 * Every credential key of `kind` stored under `keys`, found with SCAN (never
 * KEYS, which blocks Redis): on a Cluster, on every master, since each holds
 * its own slots. Tombstones are listed too (they are credential hashes);
 * readers skip them. A key written or deleted during the scan may or may not
 * be listed, as SCAN guarantees.
 */
export async function* scanCredentialKeys(
  client: RedisClient,
  keys: RedisKeys,
  kind: string,
): AsyncIterable<CredentialKey> {
  const nodes = await nodesToScan(client);
  const seen = new Set<string>();
  for (const node of nodes)
    for (const match of keys.credentialPatterns(kind))
      for await (const batch of node.scanStream({ match, count: SCAN_COUNT }))
        for (const redisKey of batch as string[]) {
          const key = keys.credentialKeyOf(redisKey);
          // The patterns overlap and may match another kind's subject; SCAN may repeat a key.
          if (key?.kind !== kind || seen.has(keyId(key))) continue;
          seen.add(keyId(key));
          yield key;
        }
}

/** The client itself, or a Cluster's masters once it knows them (a missed master would go unlisted). */
async function nodesToScan(client: RedisClient): Promise<Redis[]> {
  if (!(client instanceof Cluster)) return [client];
  await client.ping(); // waits for the slots to be discovered
  const masters = client.nodes("master");
  if (masters.length === 0) throw new Error("the Redis Cluster client knows no master");
  return masters;
}
