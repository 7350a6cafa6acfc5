import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { createGrpcJsClient, type GrpcJsClient } from "../helpers/grpc-js-client.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";

const APP = { appid: "wx0000000000000pr1", secret: "process-secret-0123" };
const TOKEN = "/cgi-bin/token";
const LOCK_TTL_MS = 2000;

interface BrokerProcess {
  child: ChildProcess;
  client: GrpcJsClient<typeof TokenService>;
  exited: Promise<number | null>;
}

let redis: RedisServer;
let emulator: Emulator;
let dir: string;
let config: string;
const brokers: BrokerProcess[] = [];

async function startBroker(): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ["bin/token-broker.js", "serve", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const grpc = await new Promise<string>((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`broker exited early with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const parsed = JSON.parse(line) as { msg?: string; grpc?: string };
      if (parsed.msg === "token broker serving" && parsed.grpc)
        resolve(parsed.grpc.replace("http://", ""));
    });
  });
  return { child, exited, client: createGrpcJsClient(TokenService, grpc) };
}

beforeAll(async () => {
  redis = await startRedisServer();
  emulator = createEmulator({ apps: [APP] });
  const { url } = await emulator.listen(0, "127.0.0.1");
  dir = mkdtempSync(join(tmpdir(), "broker-replicas-"));
  writeFileSync(join(dir, "secret"), APP.secret);
  config = join(dir, "broker.yaml");
  writeFileSync(
    config,
    [
      "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
      `upstream: { baseUrl: "${url}", timeoutMs: 10000 }`,
      `store: { type: redis, url: "${redis.url}", prefix: "p-${randomUUID().slice(0, 8)}", lockTtlMs: ${LOCK_TTL_MS} }`,
      "log: { level: info }",
      "apps:",
      `  - { id: shop, appid: ${APP.appid}, secret: { file: ${join(dir, "secret")} }, prefetch: false }`,
    ].join("\n"),
  );
  brokers.push(...(await Promise.all([startBroker(), startBroker(), startBroker()])));
}, 60_000);

afterAll(async () => {
  for (const b of brokers) {
    b.client.close();
    b.child.kill("SIGKILL");
    await b.exited;
  }
  await emulator.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

const req = { appId: "shop", kind: TokenKind.ACCESS_TOKEN };

describe("three broker processes sharing one Redis", () => {
  it("1000 concurrent GetToken on a cold cache, spread over the 3, make exactly one upstream fetch", async () => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => brokers[i % 3]?.client.getToken(req)),
    );
    expect(emulator.control.callCount(TOKEN)).toBe(1);
    expect(new Set(results.map((r) => r?.token?.value)).size).toBe(1);
  });

  it("1000 concurrent InvalidateToken with the same stale value make exactly one refresh; a watcher on another replica sees it", async () => {
    const stale = (await brokers[0]?.client.getToken(req))?.token?.value ?? "";
    const ac = new AbortController();
    const watched: bigint[] = [];
    const watching = (async () => {
      try {
        for await (const m of brokers[2]?.client.watchToken(req, { signal: ac.signal }) ?? []) {
          watched.push(m.token?.version ?? 0n);
          if (watched.length === 2) ac.abort();
        }
      } catch {
        // cancelled by us
      }
    })();
    await expect.poll(() => watched.length).toBe(1);
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        brokers[i % 3]?.client.invalidateToken({ ...req, rejectedValue: stale, errcode: 40001 }),
      ),
    );
    expect(emulator.control.callCount(TOKEN)).toBe(2);
    expect(results.filter((r) => r?.refreshed)).toHaveLength(1);
    expect(results.filter((r) => r?.outcome === InvalidateOutcome.REFRESHED)).toHaveLength(1);
    expect(new Set(results.map((r) => r?.token?.version))).toEqual(new Set([2n]));
    await watching;
    expect(watched).toEqual([1n, 2n]);
  });

  it("when the lock holder is killed mid-fetch, another replica completes the refresh as soon as the lease runs out", async () => {
    const stale = (await brokers[0]?.client.getToken(req))?.token?.value ?? "";
    const callsBefore = emulator.control.callCount(TOKEN);
    emulator.control.injectFault({
      endpoint: TOKEN,
      times: 1,
      action: { type: "latency", ms: 4000 },
    });
    const [holder, survivor] = [brokers[0], brokers[1]];
    holder?.client.invalidateToken({ ...req, rejectedValue: stale }).catch(() => {});
    await expect.poll(() => emulator.control.callCount(TOKEN)).toBe(callsBefore + 1); // the holder is fetching
    holder?.child.kill("SIGKILL");
    await holder?.exited;
    const started = Date.now();
    const res = await survivor?.client.invalidateToken(
      { ...req, rejectedValue: stale },
      { timeoutMs: 20_000 },
    );
    const takeoverMs = Date.now() - started;
    console.info(`takeover of a killed holder: ${takeoverMs} ms at a ${LOCK_TTL_MS} ms lease`);
    expect(res?.refreshed).toBe(true);
    expect(Number(res?.token?.version)).toBe(3);
    expect(takeoverMs).toBeGreaterThan(LOCK_TTL_MS / 2); // it waited for the lease
    // ...and no longer: the lease's PTTL says when a dead holder's lock is free
    // (it used to sit out a fixed lease + 5 s).
    expect(takeoverMs).toBeLessThan(LOCK_TTL_MS + 1500);
    expect(emulator.control.checkToken(res?.token?.value ?? "").valid).toBe(true);
    const third = await brokers[2]?.client.getToken(req);
    expect(third?.token?.value).toBe(res?.token?.value);
  }, 30_000);
});
