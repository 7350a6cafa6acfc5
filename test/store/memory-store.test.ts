import { describe, expect, it } from "vitest";
import type { CredentialUpdate } from "../../src/core/ports/token-store.js";
import { MemoryTokenStore } from "../../src/store/memory-store.js";

const key = { appId: "a", kind: "access_token" } as const;
const next = (value: string) => ({ value, fetchedAt: 0, expiresAt: 1000 });

describe("MemoryTokenStore", () => {
  it("writes version 1 when empty and the next version on a matching compare", async () => {
    const store = new MemoryTokenStore();
    const first = await store.compareAndSet(key, 0, 1, next("t1"));
    expect(first).toMatchObject({ written: true, credential: { value: "t1", version: 1 } });
    const second = await store.compareAndSet(key, 1, 1, next("t2"));
    expect(second).toMatchObject({ written: true, credential: { value: "t2", version: 2 } });
    expect(await store.get(key)).toMatchObject({ value: "t2", version: 2 });
  });

  it("refuses a write based on a stale version and reports what is stored", async () => {
    const store = new MemoryTokenStore();
    await store.compareAndSet(key, 0, 1, next("t1"));
    await store.compareAndSet(key, 1, 1, next("t2"));
    const stale = await store.compareAndSet(key, 1, 1, next("late"));
    expect(stale).toMatchObject({ written: false, current: { value: "t2", version: 2 } });
    expect((await store.get(key))?.value).toBe("t2");
  });

  it("refuses a write whose fence is below the highest fence written (a holder that lost its lease)", async () => {
    const store = new MemoryTokenStore();
    await store.compareAndSet(key, 0, 5, next("from-fence-5"));
    const late = await store.compareAndSet(key, 1, 4, next("from-fence-4"));
    expect(late).toMatchObject({
      written: false,
      reason: "fence",
      current: { value: "from-fence-5" },
    });
    expect(await store.compareAndSet(key, 1, 5, next("same-holder-again"))).toMatchObject({
      written: true,
    });
  });

  it("restores a credential only over nothing or an older version, resetting the fence", async () => {
    const store = new MemoryTokenStore();
    const held = { value: "held", version: 7, fetchedAt: 0, expiresAt: 1000 };
    expect(await store.restore(key, held)).toMatchObject({
      written: true,
      credential: { version: 7 },
    });
    expect(await store.restore(key, { ...held, value: "older", version: 6 })).toMatchObject({
      written: false,
      current: { value: "held" },
    });
    // A lock holder after a store restart starts from fence 1 again, and can write.
    expect(await store.compareAndSet(key, 7, 1, next("after-restart"))).toMatchObject({
      written: true,
      credential: { version: 8 },
    });
  });

  it("notifies subscribers of every write, and a throwing subscriber does not break others", async () => {
    const store = new MemoryTokenStore();
    const seen: CredentialUpdate[] = [];
    store.subscribe(() => {
      throw new Error("broken subscriber");
    });
    const unsubscribe = store.subscribe((u) => seen.push(u));
    await store.compareAndSet(key, 0, 1, next("t1"));
    unsubscribe();
    await store.compareAndSet(key, 1, 1, next("t2"));
    expect(seen.map((u) => [u.key.appId, u.credential.version])).toEqual([["a", 1]]);
  });
});
