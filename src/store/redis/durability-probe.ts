import { Cluster, type Redis } from "ioredis";
import type { StoreDurability } from "../../core/ports/token-store.js";
import type { RedisClient } from "./connection.js";

/**
 * Whether Redis keeps what the broker wrote across its own restart, for the
 * warning the broker gives at start (users' grants cannot be fetched again).
 * Read with CONFIG GET (appendonly, appendfsync, save); where CONFIG is not
 * allowed (the README's least-privilege ACL user, managed services), with
 * INFO persistence, which shows whether AOF is on but not the RDB save
 * points. On a Cluster every master is asked: all must persist. Never throws.
 */
export async function probeDurability(client: RedisClient): Promise<StoreDurability> {
  try {
    const nodes = await masters(client);
    const found = await Promise.all(nodes.map(probeNode));
    if (found.length === 1 && found[0]) return found[0];
    return {
      durable: found.every((f) => f.durable),
      detail: found.map((f, i) => `${address(nodes[i])}: ${f.detail}`).join("; "),
    };
  } catch (err) {
    return { durable: false, detail: `could not verify Redis persistence: ${reason(err)}` };
  }
}

async function masters(client: RedisClient): Promise<Redis[]> {
  if (!(client instanceof Cluster)) return [client];
  await client.ping(); // waits for the slots to be discovered
  const found = client.nodes("master");
  if (found.length === 0) throw new Error("the Redis Cluster client knows no master");
  return found;
}

async function probeNode(node: Redis): Promise<StoreDurability> {
  let appendonly: string;
  let appendfsync: string;
  let save: string;
  try {
    [appendonly, appendfsync, save] = await Promise.all([
      configGet(node, "appendonly"),
      configGet(node, "appendfsync"),
      configGet(node, "save"),
    ]);
  } catch (err) {
    return fromInfo(node, `CONFIG GET refused: ${reason(err)}`);
  }
  const rdb = save.trim() !== "";
  if (appendonly === "yes")
    return {
      durable: true,
      detail: `AOF is on (appendfsync ${appendfsync}): ${FSYNC_LOSS[appendfsync] ?? "see Redis's appendfsync documentation for what a crash loses"}${rdb ? `; RDB save points too (${save})` : ""}`,
    };
  if (rdb)
    return {
      durable: true,
      detail: `RDB snapshots (save ${save}), AOF off: a restart loses the writes made since the last snapshot; appendonly yes (appendfsync everysec) loses at most about 1 s`,
    };
  return {
    durable: false,
    detail: `Redis persists nothing (appendonly no, no RDB save points): a restart loses every credential, users' grants included; set appendonly yes (appendfsync everysec)`,
  };
}

const FSYNC_LOSS: Readonly<Record<string, string>> = {
  everysec: "a crash loses at most about 1 s of writes",
  always: "every acknowledged write survives a crash",
  no: "the OS flushes the file when it chooses (often every 30 s): a crash loses the writes since",
};

/** What INFO persistence tells without CONFIG: AOF on or off, and evidence of snapshots. */
async function fromInfo(node: Redis, configProblem: string): Promise<StoreDurability> {
  let info: Record<string, string>;
  try {
    info = parseInfo(await node.info("persistence"));
  } catch (err) {
    return {
      durable: false,
      detail: `could not verify Redis persistence: ${configProblem}, and INFO persistence failed: ${reason(err)}`,
    };
  }
  if (info.aof_enabled === "1")
    return {
      durable: true,
      detail: `AOF is on (from INFO persistence; its appendfsync policy could not be verified: ${configProblem})`,
    };
  if (info.aof_enabled !== "0")
    return {
      durable: false,
      detail: `could not verify Redis persistence: ${configProblem}, and INFO persistence has no aof_enabled`,
    };
  const lastSave = Number(info.rdb_last_save_time);
  const snapshots = [
    info.rdb_saves === undefined ? "" : `${info.rdb_saves} snapshot(s) since Redis started`,
    info.rdb_bgsave_in_progress === "1" ? "a snapshot in progress" : "",
    Number.isFinite(lastSave) && lastSave > 0
      ? `last at ${new Date(lastSave * 1000).toISOString()}`
      : "",
  ].filter(Boolean);
  return {
    durable: false,
    detail: `AOF is off, and whether RDB save points are set could not be verified (${configProblem}; INFO persistence shows ${snapshots.join(", ") || "no snapshot detail"}); with save points a restart loses the writes since the last snapshot, without them everything; appendonly yes (appendfsync everysec) loses at most about 1 s`,
  };
}

async function configGet(node: Redis, name: string): Promise<string> {
  const reply = (await node.config("GET", name)) as unknown;
  const value = Array.isArray(reply) ? reply[1] : undefined;
  if (typeof value !== "string") throw new Error(`CONFIG GET ${name} returned nothing`);
  return value;
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

function address(node: Redis | undefined): string {
  return node ? `${node.options.host}:${node.options.port}` : "?";
}

/** A failure's first line: enough for the operator, without anything ioredis appends. */
function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
}
