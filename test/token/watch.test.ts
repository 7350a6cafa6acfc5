import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/token/token-manager.js";
import {
  eventually,
  never,
  startTokenHarness,
  type TokenHarness,
} from "../helpers/token-harness.js";

describe("watch", () => {
  let h: TokenHarness;
  beforeEach(async () => {
    h = await startTokenHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  async function collect(count: number, signal: AbortSignal): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    for await (const e of h.manager.watch("oa", "access_token", signal)) {
      events.push(e);
      if (events.length === count) break;
    }
    return events;
  }

  it("sends the current token first (fetching it), then every new version in order", async () => {
    const ac = new AbortController();
    const watching = collect(4, ac.signal);
    await eventually(() => h.calls("/cgi-bin/token") === 1, "first fetch");
    for (let i = 0; i < 3; i++) {
      const current = await h.manager.get("oa", "access_token", never);
      await h.manager.invalidate("oa", "access_token", current.value, 40001, never);
    }
    const events = await watching;
    expect(events.map((e) => e.credential.version)).toEqual([1, 2, 3, 4]);
    expect(events[0]?.credential.previousValidUntil).toBeUndefined();
    for (const e of events.slice(1))
      expect(e.credential.previousValidUntil).toBe(e.credential.fetchedAt + 300_000);
    expect(h.manager.watcherCount).toBe(0);
  });

  it("delivers scheduled refreshes to every watcher and ends when the signal aborts", async () => {
    await h.manager.get("oa", "access_token", never);
    const controllers = Array.from({ length: 50 }, () => new AbortController());
    const seen = controllers.map(() => [] as number[]);
    const loops = controllers.map(async (ac, i) => {
      try {
        for await (const e of h.manager.watch("oa", "access_token", ac.signal))
          seen[i]?.push(e.credential.version);
      } catch (err) {
        expect(err).toBe(ac.signal.reason);
      }
    });
    await eventually(() => h.manager.watcherCount === 50, "watchers registered");
    await h.clock.advance((h.manager.nextRefreshAt("oa", "access_token") ?? 0) - h.clock.now());
    await eventually(() => seen.every((s) => s.length === 2), "all watchers got version 2");
    for (const ac of controllers) ac.abort(new Error("client went away"));
    await Promise.all(loops);
    expect(seen.every((s) => s.join() === "1,2")).toBe(true);
    expect(h.manager.watcherCount).toBe(0);
  });
});
