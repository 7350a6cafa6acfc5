import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind } from "../../../gen/tokenbroker/v1/token_service_pb.js";
import { createEmulator, type Emulator } from "../../../src/emulator/index.js";
import { type BrokerProcess, spawnBroker } from "../../../test/helpers/broker-process.js";
import { createGrpcJsClient } from "../../../test/helpers/grpc-js-client.js";
import {
  freePort,
  type RedisServer,
  startRedisServer,
} from "../../../test/helpers/redis-server.js";
import { createTokenSource, type TokenSource } from "../src/index.js";

/**
 * The TokenSource against three broker processes sharing one Redis, as
 * deployed: one killed and one restarted while the source streams, one
 * frozen (SIGSTOP: its connection stays open and nothing comes), and streams
 * ending at their maximum age and moving between replicas. Throughout, a
 * sampler asks the source for its token every few milliseconds: it must
 * always have one, and WeChat (the emulator) must accept it.
 */

const APP = { appid: "wx0000000000000ts3", secret: "replicas-secret-000001" };
const TUNING = {
  firstMessageTimeoutMs: 2_000,
  pingIntervalMs: 500,
  pingTimeoutMs: 1_000,
  backoffInitialMs: 100,
  backoffMaxMs: 1_000,
  streamGraceMs: 1_000,
};

let redis: RedisServer;
let emulator: Emulator;
let dir: string;
const ports: number[] = [];
const configs: string[] = [];
const brokers: Array<BrokerProcess | undefined> = [];
let source: TokenSource;
const sampled = {
  calls: 0,
  failures: [] as string[],
  rejectedByWechat: 0,
  versions: new Set<bigint>(),
};
const connectedTo = new Set<string>();
let sampler: NodeJS.Timeout | undefined;

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const address = (i: number) => `127.0.0.1:${ports[i]}`;
const indexOf = (addr: string | undefined) => ports.findIndex((p) => `127.0.0.1:${p}` === addr);

/** Replaces WeChat's token via a running broker (as a client seeing 40001 would). */
async function rotateVia(i: number): Promise<bigint> {
  const broker = brokers[i];
  if (!broker) throw new Error(`broker ${i} is not running`);
  const current = await broker.client.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });
  const res = await broker.client.invalidateToken({
    appId: "shop",
    kind: TokenKind.ACCESS_TOKEN,
    rejectedValue: current.token?.value ?? "",
    errcode: 40001,
  });
  return res.token?.version ?? 0n;
}

beforeAll(async () => {
  redis = await startRedisServer();
  emulator = createEmulator({ apps: [APP] });
  const { url } = await emulator.listen(0, "127.0.0.1");
  dir = mkdtempSync(join(tmpdir(), "token-source-replicas-"));
  writeFileSync(join(dir, "secret"), APP.secret);
  for (let i = 0; i < 3; i++) {
    ports.push(await freePort());
    const config = join(dir, `broker-${i}.yaml`);
    writeFileSync(
      config,
      [
        `listen: { grpc: "127.0.0.1:${ports[i]}", connect: 127.0.0.1:0 }`,
        `upstream: { baseUrl: "${url}", timeoutMs: 5000 }`,
        `store: { type: redis, url: "${redis.url}", prefix: "ts-replicas", lockTtlMs: 2000 }`,
        // Streams end every 2-4 s: the source keeps moving between replicas.
        "watch: { maxStreamAgeSeconds: 3, maxStreamAgeJitter: 0.3, ackRenewSeconds: 5 }",
        "shutdown: { graceMs: 0 }",
        "log: { level: info }",
        "apps:",
        `  - { id: shop, appid: ${APP.appid}, secret: { file: ${join(dir, "secret")} }, prefetch: false }`,
      ].join("\n"),
    );
    configs.push(config);
  }
  brokers.push(...(await Promise.all(configs.map((c) => spawnBroker(c)))));
  if (process.env.DBG) console.log("brokers up");
  source = await createTokenSource({
    address: ports.map((_, i) => address(i)),
    appId: "shop",
    kind: "access_token",
    credentials: {},
    tuning: TUNING,
    ...(process.env.DBG
      ? { onError: (e: Error, d: string) => console.log("ERR", d, e.message) }
      : {}),
  });
  sampler = setInterval(() => {
    sampled.calls++;
    try {
      const token = source.token();
      const current = source.current();
      if (current) sampled.versions.add(current.version);
      if (!emulator.control.checkToken(token).valid) sampled.rejectedByWechat++;
    } catch (err) {
      sampled.failures.push((err as Error).message);
    }
    const to = source.status().connectedTo;
    if (to) connectedTo.add(to);
  }, 5);
}, 60_000);

afterAll(async () => {
  if (sampler) clearInterval(sampler);
  await source?.close();
  for (const b of brokers) {
    b?.child.kill("SIGCONT");
    await b?.kill();
  }
  await emulator?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("TokenSource over three broker processes", { timeout: 120_000 }, () => {
  it("keeps a valid token throughout while the replica it streams from is killed, another restarted, and streams end at their maximum age", async () => {
    expect(source.current()?.version).toBe(1n);

    // Kill the replica the source streams from, then rotate through another.
    await until(() => indexOf(source.status().connectedTo) >= 0, "a stream");
    const first = indexOf(source.status().connectedTo);
    await brokers[first]?.kill();
    brokers[first] = undefined;
    const survivor = (first + 1) % 3;
    const v2 = await rotateVia(survivor);
    await until(() => source.current()?.version === v2, `version ${v2} after a kill`);

    // Restart the replica it streams from now (kill, then start on the same
    // address), and rotate through the restarted one.
    await until(() => indexOf(source.status().connectedTo) >= 0, "a stream");
    const second = indexOf(source.status().connectedTo);
    await brokers[second]?.kill();
    brokers[second] = await spawnBroker(configs[second] as string);
    const v3 = await rotateVia(second);
    await until(() => source.current()?.version === v3, `version ${v3} after a restart`);

    // The killed one comes back too.
    brokers[first] = await spawnBroker(configs[first] as string);

    // Streams ended by age and reopened on other replicas.
    await until(() => connectedTo.size === 3, "streams on all three replicas");
    expect(source.status().reconnects).toBeGreaterThan(2);

    // The source's acknowledgement reached the shared store: any replica counts it.
    await until(() => source.status().acknowledgedVersion === v3, "the ack of the last version");
    const admin = createGrpcJsClient(AdminService, address(second));
    await admin.getStatus({ appId: "shop" }); // a fresh replica learns the credential
    await expect
      .poll(async () => (await admin.getStatus({ appId: "shop" })).credentials[0], {
        timeout: 10_000,
      })
      .toMatchObject({ version: v3, clientsCurrent: 1, clientsSuperseded: 0 });
    admin.close();

    expect(sampled.failures).toEqual([]);
    expect(sampled.rejectedByWechat).toBe(0);
    expect(sampled.calls).toBeGreaterThan(100);
    expect([...sampled.versions]).toEqual([1n, v2, v3]);
  });

  it("leaves a frozen replica (SIGSTOP: the connection stays open, nothing comes) and gets the next version from another", async () => {
    await until(() => indexOf(source.status().connectedTo) >= 0, "a stream");
    const frozen = indexOf(source.status().connectedTo);
    const broker = brokers[frozen];
    if (!broker) throw new Error("no broker to freeze");
    broker.child.kill("SIGSTOP");
    try {
      const before = source.current()?.version ?? 0n;
      const next = await rotateVia((frozen + 1) % 3);
      expect(next).toBe(before + 1n);
      await until(
        () => source.current()?.version === next,
        `version ${next} with a replica frozen`,
      );
      expect(indexOf(source.status().connectedTo)).not.toBe(frozen);
    } finally {
      broker.child.kill("SIGCONT");
    }
    expect(sampled.failures).toEqual([]);
    expect(sampled.rejectedByWechat).toBe(0);
  });
});
