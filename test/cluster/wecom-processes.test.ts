import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidateOutcome, TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { type BrokerProcess, spawnBroker } from "../helpers/broker-process.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";

/**
 * WeCom apps on three broker OS processes sharing one Redis (issue 12:
 * "Redis replicas, one fetch for 1000 cold callers on 3 processes"), the
 * emulator's WeCom routes over HTTP as upstream.
 */

const CORP = "ww000000000000p001";
const HR = { agentid: 1000002, secret: "hr-process-secret-0000001" };
const OA = { agentid: 1000003, secret: "oa-process-secret-0000001" };
const GETTOKEN = "/cgi-bin/gettoken";
const AGENT_TICKET = "/cgi-bin/ticket/get";
const N = 1000;

let redis: RedisServer;
let emulator: Emulator;
let emulatorUrl: string;
let dir: string;
const brokers: BrokerProcess[] = [];

const broker = (i: number) => {
  const b = brokers[i % brokers.length];
  if (!b) throw new Error("no broker process");
  return b.client;
};
// The emulator counts a WeCom app's calls under <corpid>/<agentid> too.
const calls = (endpoint: string, agent?: { agentid: number }) =>
  emulator.control.callCount(endpoint, agent ? `${CORP}/${agent.agentid}` : CORP);
const hrToken = { appId: "hr", kind: TokenKind.ACCESS_TOKEN };

/** Versions of hr's token a WatchToken stream on `b` delivers, until it has delivered `count`. */
function watchVersions(b: BrokerProcess, count: number) {
  const ac = new AbortController();
  const versions: bigint[] = [];
  const done = (async () => {
    try {
      for await (const m of b.client.watchToken(hrToken, { signal: ac.signal })) {
        versions.push(m.token?.version ?? 0n);
        if (versions.length === count) ac.abort();
      }
    } catch {
      // cancelled by us
    }
  })();
  return { versions, done };
}

beforeAll(async () => {
  redis = await startRedisServer();
  emulator = createEmulator({ wecom: { corps: [{ corpid: CORP, apps: [HR, OA] }] } });
  const { url } = await emulator.listen(0, "127.0.0.1");
  emulatorUrl = url;
  dir = mkdtempSync(join(tmpdir(), "broker-wecom-replicas-"));
  writeFileSync(join(dir, "hr-secret"), HR.secret);
  writeFileSync(join(dir, "oa-secret"), OA.secret);
  const app = (id: string, agentid: number) =>
    `  - { id: ${id}, type: wecom, corpid: ${CORP}, agentid: "${agentid}", secret: { file: ${join(dir, `${id}-secret`)} }, prefetch: false }`;
  const config = join(dir, "broker.yaml");
  writeFileSync(
    config,
    [
      "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
      // No official accounts here: baseUrl points at the emulator only so nothing leaves the machine.
      `upstream: { baseUrl: "${url}", wecomBaseUrl: "${url}", timeoutMs: 10000 }`,
      `store: { type: redis, url: "${redis.url}", prefix: "w-${randomUUID().slice(0, 8)}" }`,
      "log: { level: info }",
      "apps:",
      app("hr", HR.agentid),
      app("oa", OA.agentid),
    ].join("\n"),
  );
  brokers.push(
    ...(await Promise.all([spawnBroker(config), spawnBroker(config), spawnBroker(config)])),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.kill()));
  await emulator?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a WeCom corp's two apps on three broker processes sharing one Redis", () => {
  it("1000 concurrent GetToken on a cold cache, over both apps and the 3 processes, make one gettoken per app", async () => {
    const apps = ["hr", "oa"] as const;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        broker(i).getToken({ appId: apps[i % 2], kind: TokenKind.ACCESS_TOKEN }),
      ),
    );
    expect(calls(GETTOKEN, HR)).toBe(1);
    expect(calls(GETTOKEN, OA)).toBe(1);
    expect(calls(GETTOKEN)).toBe(2);
    const valuesOf = (app: number) =>
      new Set(results.filter((_, i) => i % 2 === app).map((r) => r.token?.value));
    const [hr, oa] = [valuesOf(0), valuesOf(1)];
    expect(hr.size).toBe(1);
    expect(oa.size).toBe(1);
    // Two apps of one corp never share a token: each is WeCom's token of its own app.
    const live = emulator.control.wecomTokens();
    expect(live.find((t) => t.app === String(HR.agentid))?.value).toBe([...hr][0]);
    expect(live.find((t) => t.app === String(OA.agentid))?.value).toBe([...oa][0]);
  });

  it("1000 concurrent 42001 reports of a token WeCom invalidated early make one refresh; watchers on every process see it", async () => {
    const stale = (await broker(0).getToken(hrToken)).token?.value ?? "";
    const before = calls(GETTOKEN, HR);
    emulator.control.invalidateWecomToken(stale); // WeCom ends it early (R30): it is really rejected
    const rejected = await fetch(
      `${emulatorUrl}/cgi-bin/agent/get?access_token=${stale}&agentid=${HR.agentid}`,
    );
    expect(((await rejected.json()) as { errcode: number }).errcode).not.toBe(0);

    // A watcher on every process: whichever one refreshes, the other two must hear it through Redis.
    const watchers = brokers.map((b) => watchVersions(b, 2));
    await expect.poll(() => watchers.map((w) => w.versions.length)).toEqual([1, 1, 1]);
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        broker(i).invalidateToken({ ...hrToken, rejectedValue: stale, errcode: 42001 }),
      ),
    );
    expect(calls(GETTOKEN, HR) - before).toBe(1);
    expect(calls(GETTOKEN, OA)).toBe(1); // the other app's token is untouched
    expect(results.filter((r) => r.outcome === InvalidateOutcome.REFRESHED)).toHaveLength(1);
    expect(results.filter((r) => r.refreshed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.token?.version))).toEqual(new Set([2n]));
    const fresh = results[0]?.token?.value ?? "";
    expect(fresh).not.toBe(stale);
    expect(new Set(results.map((r) => r.token?.value))).toEqual(new Set([fresh]));
    for (const w of watchers) await w.done;
    expect(watchers.map((w) => w.versions)).toEqual([
      [1n, 2n],
      [1n, 2n],
      [1n, 2n],
    ]);
    const accepted = await fetch(
      `${emulatorUrl}/cgi-bin/agent/get?access_token=${fresh}&agentid=${HR.agentid}`,
    );
    expect(((await accepted.json()) as { errcode: number }).errcode).toBe(0);
  });

  it("1000 concurrent GetToken of the agent ticket on a cold cache make one ticket/get per app", async () => {
    const apps = ["hr", "oa"] as const;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        broker(i).getToken({ appId: apps[i % 2], kind: TokenKind.WECOM_AGENT_TICKET }),
      ),
    );
    expect(calls(AGENT_TICKET, HR)).toBe(1);
    expect(calls(AGENT_TICKET, OA)).toBe(1);
    const tickets = emulator.control.wecomTickets().filter((t) => t.kind === "agent_config");
    for (const [app, agent] of [
      [0, HR],
      [1, OA],
    ] as const) {
      const values = new Set(results.filter((_, i) => i % 2 === app).map((r) => r.token?.value));
      expect(values.size).toBe(1);
      // WeCom's agent_config ticket of that very app.
      expect(tickets.find((t) => t.app === String(agent.agentid))?.value).toBe([...values][0]);
    }
    // The tickets were fetched with the tokens already cached: no gettoken beyond the earlier ones.
    expect(calls(GETTOKEN)).toBe(3);
  });
});
