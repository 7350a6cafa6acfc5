import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyId } from "../../src/core/credential.js";
import { KINDS } from "../../src/credentials/index.js";
import { CredentialRules, DEFAULT_REFRESH_POLICY } from "../../src/token/refresh-policy.js";
import { versionJitter } from "../../src/token/refresh-schedule.js";
import { type ClusterSetup, startClusterSetup } from "../helpers/redis-topologies.js";
import { CLASSIC, STABLE, startReplicas } from "../helpers/replica-harness.js";
import { eventually, never } from "../helpers/token-harness.js";

/**
 * The whole token manager (lock, schedule, store, pub/sub) on three replicas
 * sharing a three-master Redis Cluster. Each credential's keys share a hash
 * tag, so a credential lives in one slot; the schedule lives in another.
 */

const CREDENTIALS = [
  { appId: "classic", kind: "access_token", mode: "classic" },
  { appId: "stable", kind: "access_token", mode: "stable" },
  { appId: "classic", kind: "jsapi_ticket", mode: "classic" },
  { appId: "classic", kind: "wx_card_ticket", mode: "classic" },
] as const;
type Credential = (typeof CREDENTIALS)[number];

let setup: ClusterSetup;
/** One connection per node, in `setup.servers` order. */
const nodes: Redis[] = [];

beforeAll(async () => {
  setup = await startClusterSetup();
  for (const s of setup.servers) {
    const node = new Redis({ host: "127.0.0.1", port: s.port, maxRetriesPerRequest: 0 });
    node.on("error", () => {});
    nodes.push(node);
  }
  // The setup splits the slots in three ranges; all four credentials' hash tags
  // fall in the last one. Move two of those (still empty) slots so that the
  // credentials live on all three nodes, and the schedule on yet another slot.
  await moveEmptySlot(await slotOf(CREDENTIALS[1]), 0); // stable token → node 0
  await moveEmptySlot(await slotOf(CREDENTIALS[2]), 1); // jsapi ticket → node 1
});
afterAll(async () => {
  for (const n of nodes) n.disconnect();
  await setup?.close();
});

describe("three replicas sharing a three-master Redis Cluster", () => {
  it("300 concurrent gets per credential, spread over the replicas, make exactly one upstream call per credential, on three nodes", async () => {
    const h = await startReplicas(3, setup.url);
    try {
      const results = await Promise.all(
        CREDENTIALS.map((c) =>
          Promise.all(
            Array.from({ length: 300 }, (_, i) =>
              replicaOf(h, i % 3).manager.get(c.appId, c.kind, never),
            ),
          ),
        ),
      );
      expect(h.calls("/cgi-bin/token")).toBe(1);
      expect(h.calls("/cgi-bin/token", CLASSIC.appid)).toBe(1);
      expect(h.calls("/cgi-bin/stable_token")).toBe(1);
      expect(h.calls("/cgi-bin/stable_token", STABLE.appid)).toBe(1);
      expect(h.calls("/cgi-bin/ticket/getticket")).toBe(2);
      expect(h.calls("/cgi-bin/ticket/getticket", CLASSIC.appid)).toBe(2);
      for (const [i, c] of CREDENTIALS.entries()) {
        const got = results[i] ?? [];
        expect(got).toHaveLength(300);
        expect(new Set(got.map((t) => t.value)).size, keyId(c)).toBe(1);
        expect(new Set(got.map((t) => t.version)), keyId(c)).toEqual(new Set([1]));
        // Every replica heard the one write.
        await eventually(
          () => h.replicas.every((r) => r.manager.peek(c.appId, c.kind)?.value === got[0]?.value),
          `${keyId(c)} on every replica`,
        );
      }
      for (const app of ["classic", "stable"]) {
        const t = results[app === "classic" ? 0 : 1]?.[0];
        expect(h.emulator.control.checkToken(t?.value ?? "").valid, app).toBe(true);
      }
      expect(results[2]?.[0]?.value).not.toBe(results[3]?.[0]?.value);
      expect(h.replicas.reduce((n, r) => n + r.manager.refreshesWritten, 0)).toBe(4);

      // Each credential is in its own slot, held by the node that owns the slot; together
      // they use every node.
      const slots = await Promise.all(CREDENTIALS.map(slotOf));
      expect(new Set(slots).size).toBe(4);
      const holders = await Promise.all(slots.map(nodesHoldingKeysIn));
      for (const [i, held] of holders.entries())
        expect(held, keyId(CREDENTIALS[i] as Credential)).toHaveLength(1);
      expect(holders.map((held) => held[0])).toEqual([2, 0, 1, 2]);
    } finally {
      await h.close();
    }
  });

  it("the shared schedule refreshes each credential once per rotation, whichever node holds it, spread over the replicas", async () => {
    const LIFETIME_S = 1800;
    const STEP_MS = 30_000;
    const h = await startReplicas(3, setup.url, {
      tokenLifetimeSeconds: LIFETIME_S,
      schedulePollMs: STEP_MS,
    });
    try {
      // Every write of every credential, in order, as replica 0's store hears them.
      const history = new Map<string, { version: number; fetchedAt: number; expiresAt: number }[]>(
        CREDENTIALS.map((c) => [keyId(c), []]),
      );
      replicaOf(h, 0).stores.store.subscribe((u) => history.get(keyId(u.key))?.push(u.credential));
      for (const r of h.replicas)
        for (const c of CREDENTIALS) await r.manager.get(c.appId, c.kind, never);
      // Tickets live 7200 s (the emulator's fixed lifetime): 6.5 h is three rotations of
      // each ticket, and 14-18 of each 1800 s token.
      const end = h.clock.now() + 6.5 * 3_600_000;
      while (h.clock.now() < end) {
        await h.clock.advance(STEP_MS);
        await h.quiet();
        for (const [i, r] of h.replicas.entries()) {
          for (const c of CREDENTIALS) {
            const t = await r.manager.get(c.appId, c.kind, never);
            expect(t.expiresAt, `${keyId(c)} on replica ${i}`).toBeGreaterThan(h.clock.now());
            if (c.kind === "access_token")
              expect(
                h.emulator.control.checkToken(t.value).valid,
                `${keyId(c)} on replica ${i}`,
              ).toBe(true);
          }
        }
      }
      await h.quiet();

      const versions = CREDENTIALS.map(
        (c) => replicaOf(h, 0).manager.peek(c.appId, c.kind)?.version ?? 0,
      );
      // Each version was written once, in order, and only when its predecessor was due:
      // no rotation refreshed twice, none skipped.
      for (const [i, c] of CREDENTIALS.entries()) {
        const writes = history.get(keyId(c)) ?? [];
        expect(
          writes.map((w) => w.version),
          keyId(c),
        ).toEqual(Array.from({ length: versions[i] ?? 0 }, (_, v) => v + 1));
        for (let v = 1; v < writes.length; v++) {
          const prev = writes[v - 1] as (typeof writes)[number];
          const next = writes[v] as (typeof writes)[number];
          const due = new CredentialRules(
            KINDS.spec(c.kind),
            {
              id: c.appId,
              type: "official_account",
              appid: "",
              secret: { reveal: () => "" },
              tokenMode: c.mode,
            },
            DEFAULT_REFRESH_POLICY,
          ).refreshAt({ ...prev, value: "" }, versionJitter(keyId(c), prev.version));
          expect(next.fetchedAt, `${keyId(c)} v${next.version}`).toBeGreaterThanOrEqual(due);
          // Tokens: at the first poll after the due time (a poll comes every 27-33 s of fake
          // time after the previous one finished, which can be a step later, and its refresh
          // may finish a step later still). Tickets: WeChat hands out the same ticket until it
          // expires, so the new one comes at the first step after expiry.
          const latest = c.kind === "access_token" ? due + 3.1 * STEP_MS : prev.expiresAt + STEP_MS;
          expect(next.fetchedAt, `${keyId(c)} v${next.version}`).toBeLessThanOrEqual(latest);
        }
      }
      const [classic, stable, jsapi, card] = versions as [number, number, number, number];
      // Tokens: one upstream call per version. A classic version lasts 1260-1350 s, a stable
      // one 1512-1560 s, each plus up to 93 s of polling: 17-19 and 15-16 versions in 6.5 h.
      expect(h.calls("/cgi-bin/token", CLASSIC.appid)).toBe(classic);
      expect(h.calls("/cgi-bin/stable_token", STABLE.appid)).toBe(stable);
      expect(classic).toBeGreaterThanOrEqual(17);
      expect(classic).toBeLessThanOrEqual(19);
      expect(stable).toBeGreaterThanOrEqual(15);
      expect(stable).toBeLessThanOrEqual(16);
      // Tickets: three rotations each, the new ticket fetched right at expiry. Per rotation the
      // early scheduled attempt gets the same ticket back and one more call gets the new one;
      // a poll that lands in the ticket's last second (it is served until 1 s before expiry)
      // confirms the old one once more, so up to one extra call per rotation.
      expect(jsapi).toBe(4);
      expect(card).toBe(4);
      const ticketCalls = h.calls("/cgi-bin/ticket/getticket", CLASSIC.appid);
      expect(ticketCalls).toBeGreaterThanOrEqual(2 + 2 * 2 * 3);
      expect(ticketCalls).toBeLessThanOrEqual(2 + 3 * 2 * 3);

      // The refreshes were done by more than one replica and together made every version.
      const perReplica = h.replicas.map((r) => r.manager.refreshesWritten);
      expect(
        perReplica.filter((n) => n > 0).length,
        `refreshes per replica: ${perReplica}`,
      ).toBeGreaterThan(1);
      expect(perReplica.reduce((a, b) => a + b, 0)).toBe(classic + stable + jsapi + card);
      for (const r of h.replicas)
        for (const [i, c] of CREDENTIALS.entries())
          expect(r.manager.peek(c.appId, c.kind)?.version, keyId(c)).toBe(versions[i]);
    } finally {
      await h.close();
    }
  }, 40_000);
});

function replicaOf(h: Awaited<ReturnType<typeof startReplicas>>, i: number) {
  const r = h.replicas[i];
  if (!r) throw new Error(`no replica ${i}`);
  return r;
}

function node(i: number): Redis {
  const n = nodes[i];
  if (!n) throw new Error(`no node ${i}`);
  return n;
}

/** The slot of a credential's keys (they share the hash tag `{appId/kind}`). */
async function slotOf(c: { appId: string; kind: string }): Promise<number> {
  return Number(await node(0).call("CLUSTER", "KEYSLOT", `x:{${c.appId}/${c.kind}}:cred`));
}

/** Indexes of the nodes with keys in `slot`. */
async function nodesHoldingKeysIn(slot: number): Promise<number[]> {
  const counts = await Promise.all(
    nodes.map((n) => n.call("CLUSTER", "COUNTKEYSINSLOT", String(slot))),
  );
  return counts.flatMap((count, i) => (Number(count) > 0 ? [i] : []));
}

/**
 * Moves an empty slot to node `to` the way a resharding does (IMPORTING,
 * MIGRATING, then SETSLOT NODE on every node), and waits until every node
 * agrees and the cluster is ok.
 */
async function moveEmptySlot(slot: number, to: number): Promise<void> {
  const ids = await Promise.all(nodes.map(async (n) => String(await n.call("CLUSTER", "MYID"))));
  const owners = await Promise.all(nodes.map((n) => ownerPort(n, slot)));
  const from = setup.servers.findIndex((s) => s.port === owners[0]);
  if (from < 0) throw new Error(`no node owns slot ${slot}`);
  if (from === to) return;
  const target = ids[to] as string;
  await node(to).call("CLUSTER", "SETSLOT", String(slot), "IMPORTING", ids[from] as string);
  await node(from).call("CLUSTER", "SETSLOT", String(slot), "MIGRATING", target);
  await node(to).call("CLUSTER", "SETSLOT", String(slot), "NODE", target);
  await node(from).call("CLUSTER", "SETSLOT", String(slot), "NODE", target);
  for (const [i, n] of nodes.entries())
    if (i !== to && i !== from) await n.call("CLUSTER", "SETSLOT", String(slot), "NODE", target);
  const port = setup.servers[to]?.port;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const agreed = (await Promise.all(nodes.map((n) => ownerPort(n, slot)))).every(
      (p) => p === port,
    );
    const ok = (await Promise.all(nodes.map((n) => n.call("CLUSTER", "INFO")))).every((info) =>
      String(info).includes("cluster_state:ok"),
    );
    if (agreed && ok) return;
    if (Date.now() > deadline) throw new Error(`slot ${slot} did not settle on node ${to}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The port of the node that `n` says owns `slot`. */
async function ownerPort(n: Redis, slot: number): Promise<number | undefined> {
  const ranges = (await n.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  const range = ranges.find(([lo, hi]) => lo <= slot && slot <= hi);
  return range?.[2][1];
}
