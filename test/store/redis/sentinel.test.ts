import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewCredential } from "../../../src/core/credential.js";
import type { CredentialUpdate } from "../../../src/core/ports/token-store.js";
import { StoreUnavailableError } from "../../../src/shared/errors.js";
import type { RedisTokenStore } from "../../../src/store/redis/redis-token-store.js";
import { type SentinelSetup, startSentinelSetup } from "../../helpers/redis-topologies.js";
import { freshKeys, openStore, until } from "./helpers.js";

const key = { appId: "wx-sentinel", kind: "access_token" } as const;
// One reading of the clock: two could straddle a millisecond, and a record
// living 7_200_001 ms is over what WeChat issues (the store refuses it).
const next = (value: string): NewCredential => {
  const now = Date.now();
  return { value, fetchedAt: now, expiresAt: now + 7_200_000 };
};

describe("RedisTokenStore through Sentinel (master, replica, three sentinels)", () => {
  let setup: SentinelSetup;
  const stores: RedisTokenStore[] = [];

  beforeAll(async () => {
    setup = await startSentinelSetup();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await setup?.close();
  });

  it("writes, reads and notifies, and writes again once the sentinels fail the master over", async () => {
    const keys = freshKeys();
    const writer = await openStore(setup.url, keys, "sentinel-writer");
    const reader = await openStore(setup.url, keys, "sentinel-reader");
    stores.push(writer, reader);
    const heard: CredentialUpdate[] = [];
    let resyncs = 0;
    reader.subscribe((u) => heard.push(u));
    reader.onResync(() => resyncs++);

    expect(await writer.compareAndSet(key, 0, 1, next("before"))).toMatchObject({ written: true });
    expect(await reader.get(key)).toMatchObject({ value: "before", version: 1 });
    await until(() => heard.length === 1, "the first update");

    const killedAt = Date.now();
    const old = await setup.killMaster();
    let written: number | undefined;
    while (written === undefined && Date.now() - killedAt < 20_000) {
      try {
        const current = await writer.get(key);
        const r = await writer.compareAndSet(key, current?.version ?? 0, 2, next("after"));
        if (r.written) written = r.credential.version;
      } catch (err) {
        // Until the failover completes the store says Redis is unreachable.
        expect(err instanceof StoreUnavailableError).toBe(true);
      }
    }
    expect(await setup.masterPort()).not.toBe(old);
    expect(written).toBeDefined();
    // The reader's subscription moves to the new master too. If it came back
    // after the write, the message is gone but a resync tells the reader to
    // re-read, which is the guarantee: it never misses the newest version.
    await until(() => resyncs >= 1, "the reader's resync after failover", 20_000);
    const heardIt = heard.some((u) => u.credential.value === "after");
    if (!heardIt) expect(await reader.get(key)).toMatchObject({ value: "after" });
    expect(await reader.get(key)).toMatchObject({ value: "after", version: written });
  });
});
