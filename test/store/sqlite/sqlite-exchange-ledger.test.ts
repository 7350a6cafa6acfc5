import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../helpers/fake-clock.js";
import { freshCipher, rawBytes, secretLike, sqliteSandbox, T0 } from "./helpers.js";

const sandbox = sqliteSandbox();
const MINUTE = 60_000;

describe("SqliteExchangeLedger", () => {
  it("claims once: others wait while it is pending, then all get the settled outcome", async () => {
    const clock = new FakeClock(T0);
    const { exchangeLedger: ledger } = sandbox.open({ clock });
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual({ state: "claimed" });
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual({ state: "pending" });
    expect(await ledger.claim("x", "client-b", MINUTE)).toEqual({ state: "pending" });
    await ledger.settle("x", "client-a", "outcome-1", 5 * MINUTE);
    const settled = { state: "settled", owner: "client-a", outcome: "outcome-1" };
    expect(await ledger.claim("x", "client-b", MINUTE)).toEqual(settled);
    await clock.advance(5 * MINUTE - 1);
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual(settled);
    // The code's life is over: the next caller claims it (WeChat then answers 40163 or 42003).
    await clock.advance(1);
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual({ state: "claimed" });
    expect(await ledger.claim("y", "client-a", MINUTE)).toEqual({ state: "claimed" });
  });

  it("a claim lapses after its time; release gives it up, by its owner only", async () => {
    const clock = new FakeClock(T0);
    const { exchangeLedger: ledger } = sandbox.open({ clock });
    await ledger.claim("x", "client-a", MINUTE);
    await clock.advance(MINUTE);
    expect(await ledger.claim("x", "client-b", MINUTE)).toEqual({ state: "claimed" });
    await ledger.release("x", "client-a");
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual({ state: "pending" });
    await ledger.release("x", "client-b");
    expect(await ledger.claim("x", "client-a", MINUTE)).toEqual({ state: "claimed" });
    // A settled exchange is not released.
    await ledger.settle("x", "client-a", "done", MINUTE);
    await ledger.release("x", "client-a");
    expect(await ledger.claim("x", "client-a", MINUTE)).toMatchObject({ state: "settled" });
  });

  it("keeps settled outcomes across a restart, sealed in the file", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const cipher = freshCipher();
    const outcome = JSON.stringify({ accessToken: secretLike("user_at", "access_token") });
    const first = sandbox.open({ path, cipher });
    await first.exchangeLedger.claim("x", "client-a", MINUTE);
    await first.exchangeLedger.settle("x", "client-a", outcome, 5 * MINUTE);
    await first.exchangeLedger.claim("y", "client-a", MINUTE);
    await first.exchangeLedger.settle("y", "client-b", "other", 5 * MINUTE);
    await first.close();
    expect(rawBytes(path).includes(outcome)).toBe(false);
    const second = sandbox.open({ path, cipher });
    expect(await second.exchangeLedger.claim("x", "client-b", MINUTE)).toEqual({
      state: "settled",
      owner: "client-a",
      outcome,
    });
    await second.close();
    // An outcome moved to another exchange, or handed to another client, does not open.
    const raw = new Database(path);
    raw
      .prepare(
        "UPDATE exchanges SET outcome = (SELECT outcome FROM exchanges WHERE id = 'x') WHERE id = 'y'",
      )
      .run();
    raw.prepare("UPDATE exchanges SET owner = 'client-b' WHERE id = 'x'").run();
    raw.close();
    const third = sandbox.open({ path, cipher });
    await expect(third.exchangeLedger.claim("x", "client-b", MINUTE)).rejects.toThrow(
      /authentication failed/,
    );
    await expect(third.exchangeLedger.claim("y", "client-b", MINUTE)).rejects.toThrow(
      /authentication failed/,
    );
  });
});
