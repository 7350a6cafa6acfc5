import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { createEmulator, type Emulator } from "../../src/emulator/index.js";
import { startBrokerHarness } from "../helpers/broker-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

const BIN = "bin/token-broker.js";
const X = { id: "x", appid: "wx00000000000000r1", secret: "x-secret-before-reset-01" };
const Y = { id: "y", appid: "wx00000000000000r2", secret: "y-secret-0000000000002" };
const Z = { id: "z", appid: "wx00000000000000r3", secret: "z-secret-0000000000003" };
const X_ROTATED = "x-secret-after-reset-002";
const UNSET_ENV = "TOKEN_BROKER_RELOAD_TEST_UNSET";

type Line = Record<string, unknown>;

/** `token-broker serve` as a child process, its JSON log lines collected. */
interface Served {
  child: ChildProcess;
  lines: Line[];
  exit: Promise<number | null>;
  /** The first line with `msg` logged after the `from`-th line. */
  line(msg: string, from: number): Promise<Line>;
}

function serve(configFile: string): Served {
  const env = { ...process.env };
  delete env[UNSET_ENV];
  const child = spawn(process.execPath, [BIN, "serve", "--config", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  const lines: Line[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) => {
    lines.push(JSON.parse(l) as Line);
    for (const w of waiters) w();
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const line = (msg: string, from: number) =>
    new Promise<Line>((resolve, reject) => {
      const check = () => {
        const found = lines.slice(from).find((l) => l.msg === msg);
        if (!found) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
      void exit.then((code) =>
        reject(new Error(`broker exited with ${code} before "${msg}": ${stderr}`)),
      );
    });
  return { child, lines, exit, line };
}

/** The broker's config file: listeners on free ports, each app's secret in a file of `dir`. */
function writeConfig(
  dir: string,
  upstream: string,
  apps: { id: string; appid: string; prefetch: boolean; secretRef?: string }[],
  extra: string[] = [],
): string {
  const file = join(dir, "broker.yaml");
  writeFileSync(
    file,
    [
      "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
      `upstream: { baseUrl: "${upstream}", timeoutMs: 2000 }`,
      ...extra,
      "apps:",
      ...apps.flatMap((a) => [
        `  - id: ${a.id}`,
        `    appid: ${a.appid}`,
        `    secret: ${a.secretRef ?? `{ file: ${join(dir, `${a.id}.secret`)} }`}`,
        `    prefetch: ${a.prefetch}`,
      ]),
    ].join("\n"),
  );
  return file;
}

interface WatchRecord {
  versions: bigint[];
  /** Settles when the stream ends: its status code and message (0 for a clean end). */
  ended: Promise<{ code: Code; message: string }>;
  done: boolean;
}

describe("config reload on SIGHUP (token-broker serve)", () => {
  let emulator: Emulator;
  let upstream: string;
  let dir: string;
  let broker: Served;
  let client: ReturnType<typeof createClient<typeof TokenService>>;

  beforeAll(async () => {
    emulator = createEmulator({ apps: [X, Y, Z] });
    upstream = (await emulator.listen(0, "127.0.0.1")).url;
    dir = mkdtempSync(join(tmpdir(), "broker-reload-"));
    for (const a of [X, Y, Z]) writeFileSync(join(dir, `${a.id}.secret`), `${a.secret}\n`);
    const file = writeConfig(dir, upstream, [
      { ...X, prefetch: false },
      { ...Y, prefetch: false },
    ]);
    broker = serve(file);
    const serving = await broker.line("token broker serving", 0);
    client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: String(serving.connect), httpVersion: "2" }),
    );
  }, 30_000);

  afterAll(async () => {
    broker?.child.kill("SIGKILL");
    await emulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function watch(appId: string): WatchRecord {
    const record: WatchRecord = {
      versions: [],
      done: false,
      ended: Promise.resolve(null as never),
    };
    record.ended = (async () => {
      try {
        for await (const m of client.watchToken({ appId, kind: TokenKind.ACCESS_TOKEN }))
          record.versions.push(m.token?.version ?? -1n);
        return { code: 0 as Code, message: "" };
      } catch (err) {
        const e = ConnectError.from(err);
        return { code: e.code, message: e.rawMessage };
      } finally {
        record.done = true;
      }
    })();
    return record;
  }

  async function hangup(): Promise<number> {
    const from = broker.lines.length;
    broker.child.kill("SIGHUP");
    await broker.line("reloading the config file", from);
    return from;
  }

  it("adds, removes and rotates apps without disturbing the streams of unchanged ones; refuses a bad config naming the key", async () => {
    const wx = watch("x");
    const wy = watch("y");
    await expect.poll(() => [wx.versions, wy.versions]).toEqual([[1n], [1n]]);
    const x1 = await client.getToken({ appId: "x", kind: TokenKind.ACCESS_TOKEN });

    // The operator resets x's AppSecret in WeChat's console (x's tokens die
    // there at once), puts the new one in the secret file, adds z, drops y,
    // and changes a setting that only a restart applies.
    emulator.control.resetSecret(X.appid, X_ROTATED);
    writeFileSync(join(dir, "x.secret"), `${X_ROTATED}\n`);
    writeConfig(
      dir,
      upstream,
      [
        { ...X, prefetch: false },
        { ...Z, prefetch: true },
      ],
      ["shutdown: { graceMs: 1234 }"],
    );
    const from = await hangup();
    const reloaded = await broker.line("config reloaded", from);
    expect(reloaded).toMatchObject({
      added: ["z"],
      removed: ["y"],
      changed: [{ app: "x", keys: ["secret"] }],
    });
    expect(
      await broker.line(
        "config reload: these settings change only on restart; the running values stay",
        from,
      ),
    ).toMatchObject({ level: "warn", keys: ["shutdown.graceMs"] });

    // y: its stream ended with NOT_FOUND saying why, and it is unknown from now on.
    await expect.poll(() => wy.done).toBe(true);
    expect(await wy.ended).toEqual({
      code: Code.NotFound,
      message:
        "app 'y' was removed from the broker's config (reloaded); this broker no longer serves it",
    });
    expect(wy.versions).toEqual([1n]);
    const gone = await client
      .getToken({ appId: "y", kind: TokenKind.ACCESS_TOKEN })
      .catch((e: unknown) => ConnectError.from(e));
    expect(gone).toMatchObject({ code: Code.NotFound });

    // z: started (prefetched) and served.
    await expect
      .poll(() => emulator.control.counters()["/cgi-bin/token"]?.[Z.appid]?.successes)
      .toBe(1);
    const z1 = await client.getToken({ appId: "z", kind: TokenKind.ACCESS_TOKEN });
    expect(z1.token?.version).toBe(1n);
    expect(emulator.control.checkToken(z1.token?.value ?? "")).toMatchObject({ valid: true });

    // x: same credential held, its stream open and quiet.
    const x1again = await client.getToken({ appId: "x", kind: TokenKind.ACCESS_TOKEN });
    expect(x1again.token?.value).toBe(x1.token?.value);
    expect(wx).toMatchObject({ versions: [1n], done: false });

    // x's next fetch uses the new secret: the emulator accepts nothing else.
    const inv = await client.invalidateToken({
      appId: "x",
      kind: TokenKind.ACCESS_TOKEN,
      rejectedValue: x1.token?.value ?? "",
      errcode: 40001,
    });
    expect(inv).toMatchObject({ refreshed: true, outcome: InvalidateOutcome.REFRESHED });
    expect(inv.token?.version).toBe(2n);
    expect(emulator.control.checkToken(inv.token?.value ?? "")).toMatchObject({
      valid: true,
      appid: X.appid,
    });
    // …and the stream opened before the reload delivers it.
    await expect.poll(() => wx.versions).toEqual([1n, 2n]);

    // A bad config: refused, the key named in an error line, the running config kept.
    writeConfig(
      dir,
      upstream,
      [
        { ...X, prefetch: false, secretRef: `{ env: ${UNSET_ENV} }` },
        { ...Z, prefetch: true },
      ],
      ["shutdown: { graceMs: 1234 }"],
    );
    const badFrom = await hangup();
    const refused = await broker.line(
      "config reload rejected; the broker keeps its running config",
      badFrom,
    );
    expect(refused).toMatchObject({ level: "error", keys: ["apps[0].secret.env"] });
    expect(String(refused.err)).toContain(
      `config key 'apps[0].secret.env': environment variable ${UNSET_ENV} is not set or empty`,
    );
    expect(broker.lines.slice(badFrom).map((l) => l.msg)).not.toContain("config reloaded");
    const x2 = await client.getToken({ appId: "x", kind: TokenKind.ACCESS_TOKEN });
    expect(x2.token?.version).toBe(2n);
    const z2 = await client.getToken({ appId: "z", kind: TokenKind.ACCESS_TOKEN });
    expect(z2.token?.value).toBe(z1.token?.value);
    expect(wx).toMatchObject({ versions: [1n, 2n], done: false });

    // The process still drains and exits cleanly; x's stream ends with the shutdown.
    broker.child.kill("SIGTERM");
    expect(await broker.exit).toBe(0);
    expect((await wx.ended).code).toBe(Code.Unavailable);

    // No secret, old or new, reached the log.
    const log = JSON.stringify(broker.lines);
    for (const secret of [X.secret, X_ROTATED, Y.secret, Z.secret])
      expect(log).not.toContain(secret);
  }, 60_000);
});

describe("config reload in process (RunningBroker.reload), on the gRPC port", () => {
  const OA = { id: "oa", appid: "wx00000000000000k1", secret: "oa-secret-000000000001" };
  const GONE = { id: "gone", appid: "wx00000000000000k2", secret: "gone-secret-0000000002" };

  it("ends the watch of a kind the app no longer offers, keeps its access token's, and lets the removed app's scheduled refreshes lapse", async () => {
    const clock = new FakeClock();
    // The access token's stream must live through three simulated hours.
    const h = await startBrokerHarness([OA, GONE], 1000, {
      clock,
      config: { watch: { maxStreamAgeSeconds: 86_400 } },
    });
    const tokens = createGrpcJsClient(TokenService, h.grpcAddress);
    try {
      const watchKind = (kind: TokenKind) => {
        const record = { versions: [] as bigint[], done: false, code: 0, details: "" };
        void (async () => {
          try {
            for await (const m of tokens.watchToken({ appId: "oa", kind }))
              record.versions.push(m.token?.version ?? -1n);
          } catch (err) {
            Object.assign(record, err as { code: number; details: string });
          } finally {
            record.done = true;
          }
        })();
        return record;
      };
      const access = watchKind(TokenKind.ACCESS_TOKEN);
      const ticket = watchKind(TokenKind.JSAPI_TICKET);
      await tokens.getToken({ appId: "gone", kind: TokenKind.ACCESS_TOKEN });
      await expect.poll(() => [access.versions, ticket.versions]).toEqual([[1n], [1n]]);
      expect(h.broker.manager.nextRefreshAt("gone", "access_token")).toBeDefined();

      const report = h.broker.reload(
        parseConfig(
          {
            apps: [
              {
                id: OA.id,
                appid: OA.appid,
                secret: { env: "OA_SECRET" },
                prefetch: false,
                kinds: ["access_token"],
              },
            ],
          },
          { env: { OA_SECRET: OA.secret }, readFile: () => "" },
        ),
      );
      expect(report).toMatchObject({
        added: [],
        removed: ["gone"],
        changed: [{ app: "oa", keys: ["kinds"] }],
      });
      await expect.poll(() => ticket.done).toBe(true);
      expect(ticket).toMatchObject({ versions: [1n], code: Code.FailedPrecondition });
      expect(ticket.details).toMatch(/app 'oa' does not offer jsapi_ticket/);
      expect(h.broker.manager.peek("gone", "access_token")).toBeUndefined();

      // Three simulated hours: oa's access token rotates (its stream, opened
      // before the reload, gets it); neither the removed app nor the dropped
      // ticket is fetched again.
      const calls = () => h.emulator.control.counters();
      const before = calls();
      expect(before["/cgi-bin/token"]?.[GONE.appid]?.calls).toBe(1);
      expect(before["/cgi-bin/ticket/getticket"]?.[OA.appid]?.calls).toBe(1);
      await clock.advance(3 * 3_600_000);
      await expect.poll(() => access.versions.length, { timeout: 10_000 }).toBe(2);
      expect(access.done).toBe(false);
      const after = calls();
      expect(after["/cgi-bin/token"]?.[GONE.appid]?.calls).toBe(
        before["/cgi-bin/token"]?.[GONE.appid]?.calls,
      );
      expect(after["/cgi-bin/ticket/getticket"]?.[OA.appid]?.calls).toBe(
        before["/cgi-bin/ticket/getticket"]?.[OA.appid]?.calls,
      );
      expect(after["/cgi-bin/token"]?.[OA.appid]?.calls).toBeGreaterThan(
        before["/cgi-bin/token"]?.[OA.appid]?.calls ?? 0,
      );
    } finally {
      tokens.close();
      await h.close();
    }
  }, 60_000);
});
