import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppliedVersions } from "../../src/core/ports/applied-versions.js";
import { LocalAppliedVersions } from "../../src/store/memory/local-applied-versions.js";
import type { RedisClient } from "../../src/store/redis/connection.js";
import { RedisAppliedVersions } from "../../src/store/redis/redis-applied-versions.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect, freshKeys } from "./redis/helpers.js";

/** The applied-version ledger's contract, on the single-node Map and on a real redis-server. */

let server: RedisServer;
const clients: RedisClient[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

const SHOP = { appId: "shop", kind: "access_token" };
const TICKET = { appId: "shop", kind: "jsapi_ticket" };

type Open = (clock: FakeClock) => { ledger: AppliedVersions; replica: () => AppliedVersions };

const factories: Array<[string, Open]> = [
  [
    "LocalAppliedVersions",
    (clock) => {
      const ledger = new LocalAppliedVersions(clock);
      return { ledger, replica: () => ledger };
    },
  ],
  [
    "RedisAppliedVersions",
    (clock) => {
      const keys = freshKeys();
      const open = () => {
        const client = connect(server.url, "applied");
        clients.push(client);
        return new RedisAppliedVersions({ client, keys, clock });
      };
      return { ledger: open(), replica: open };
    },
  ],
];

describe.each(factories)("%s", (_name, open) => {
  it("counts holders per version, one entry per holder, per credential", async () => {
    const clock = new FakeClock();
    const { ledger } = open(clock);
    expect([...(await ledger.count(SHOP))]).toEqual([]);
    await ledger.record(SHOP, "a/1", 1, 60_000);
    await ledger.record(SHOP, "a/2", 1, 60_000);
    await ledger.record(SHOP, "b/1", 1, 60_000);
    await ledger.record(TICKET, "a/1", 7, 60_000);
    expect(await ledger.count(SHOP)).toEqual(new Map([[1, 3]]));
    // A holder's next record replaces its previous one.
    await ledger.record(SHOP, "a/1", 2, 60_000);
    await ledger.record(SHOP, "b/1", 2, 60_000);
    expect(await ledger.count(SHOP)).toEqual(
      new Map([
        [1, 1],
        [2, 2],
      ]),
    );
    expect(await ledger.count(TICKET)).toEqual(new Map([[7, 1]]));
  });

  it("forgets a holder its ttl after its last record, and keeps one that renews", async () => {
    const clock = new FakeClock();
    const { ledger } = open(clock);
    await ledger.record(SHOP, "quiet", 1, 30_000);
    await ledger.record(SHOP, "renewing", 1, 30_000);
    await clock.advance(20_000);
    await ledger.record(SHOP, "renewing", 1, 30_000);
    await clock.advance(10_000);
    expect(await ledger.count(SHOP)).toEqual(new Map([[1, 1]]));
    await clock.advance(20_001);
    expect(await ledger.count(SHOP)).toEqual(new Map());
  });

  it("is one ledger for every replica sharing the store", async () => {
    const clock = new FakeClock();
    const { ledger, replica } = open(clock);
    const other = replica();
    await ledger.record(SHOP, "x/1", 4, 60_000);
    await other.record(SHOP, "x/1", 5, 60_000);
    await other.record(SHOP, "y/1", 4, 60_000);
    const want = new Map([
      [5, 1],
      [4, 1],
    ]);
    expect(await ledger.count(SHOP)).toEqual(want);
    expect(await other.count(SHOP)).toEqual(want);
  });
});

describe("RedisAppliedVersions keys", () => {
  it("holds one hash per credential that expires when nobody acknowledges, named by the app and kind only", async () => {
    const clock = new FakeClock();
    const keys = freshKeys();
    const client = connect(server.url, "applied-keys");
    clients.push(client);
    const ledger = new RedisAppliedVersions({ client, keys, clock });
    await ledger.record(SHOP, "svc/instance-1", 3, 5_000);
    const key = keys.applied(SHOP);
    expect(key).toBe(`${keys.prefix}:{shop/access_token}:applied`);
    expect(await client.hgetall(key)).toEqual({ "svc/instance-1": `3:${clock.now() + 5_000}` });
    const ttl = await client.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });
});
