import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { startReplicas } from "../helpers/replica-harness.js";

/**
 * The README's `ACL SETUSER` line for the broker's Redis user is enough:
 * three replicas fetch, invalidate, hear each other and refresh on schedule
 * as a user with only those commands, keys and channel.
 */

const never = new AbortController().signal;
setMaxListeners(0, never);
const line = /^ACL SETUSER token-broker .*$/m.exec(readFileSync("README.md", "utf8"))?.[0] ?? "";
const commands = line.split(" ").filter((w) => /^[+-]@?[a-z|]+$/.test(w));

let redis: RedisServer;
beforeAll(async () => {
  // The harness's prefixes are random ("t-…"): the same rule for them.
  redis = await startRedisServer([
    "--user",
    ..."token-broker on >pw resetkeys ~t-* resetchannels &t-*".split(" "),
    ...commands,
  ]);
});
afterAll(async () => {
  await redis?.stop();
});

it("three replicas work as the README's least-privilege Redis user", async () => {
  expect(commands).toContain("-@all");
  expect(commands).toContain("+evalsha");
  const h = await startReplicas(3, `redis://token-broker:pw@127.0.0.1:${redis.port}`);
  try {
    const first = await h.replicas[0]?.manager.get("classic", "access_token", never);
    const next = await h.replicas[1]?.manager.invalidate(
      "classic",
      "access_token",
      first?.value ?? "",
      40001,
      never,
    );
    expect(next?.credential.version).toBe(2);
    await expect
      .poll(() => h.replicas[2]?.manager.peek("classic", "access_token")?.version)
      .toBe(2);
    // The schedule (sorted sets, claim scripts) refreshes it before expiry.
    await h.clock.advance(7_000_000);
    await expect.poll(() => h.calls("/cgi-bin/token"), { timeout: 10_000 }).toBe(3);
  } finally {
    await h.close();
  }
});
