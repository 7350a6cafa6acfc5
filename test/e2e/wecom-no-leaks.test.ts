import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import type { WecomCorpSpec } from "../../src/emulator/index.js";
import { failure } from "../helpers/connect-failure.js";
import {
  describeLeakReport,
  type LeakCandidateKind,
  leakRecordDir,
  type MonitorRecording,
  parseMonitorLine,
  recordLeakCandidate,
  scanLeakRecords,
  startMonitorRecording,
} from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect } from "../store/redis/helpers.js";

/**
 * Issue 12, "the leak scan": WeCom corp secrets, WeCom access tokens and the
 * corp and agent tickets never reach a log line, an audit line, an error, the
 * metrics, or a Redis key or command other than the stored value itself. The
 * WeCom paths, successes and failures (a wrong secret, 60020, 40014 and
 * 42001 reports, a refused 40001 report, errmsgs echoing the secret and the
 * token), through the production broker on a real redis-server, then a scan
 * of this test's own recording with the suite's scanner.
 */

const PREFIX = "wecom-leaks";
const CORP = "ww00000000000lek01";
// Shaped like WeCom's: 43 characters of [A-Za-z0-9_-].
const HR = { agentid: 1000002, secret: "hrAgentSecretLeaks0001_abcdefghijklmnopqrst" };
const OA = { agentid: 1000003, secret: "oaAgentSecretLeaks0001_abcdefghijklmnopqrst" };
const FENCED = { agentid: 1000004, secret: "fencedAgentSecretLeaks01-abcdefghijklmnopqr" };
const WRONG = "hrAgentSecretWrongLeaks1_abcdefghijklmnopqr";
const corps: WecomCorpSpec[] = [
  { corpid: CORP, apps: [HR, OA, { ...FENCED, trustedIps: ["198.51.100.9"] }] },
];
const KINDS = [TokenKind.ACCESS_TOKEN, TokenKind.JSAPI_TICKET, TokenKind.WECOM_AGENT_TICKET];

let redis: RedisServer;
let dir: string;
let monitor: MonitorRecording | undefined;
beforeAll(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(join(tmpdir(), "wecom-no-leaks-"));
  // A recording of our own, scanned below; the suite's scan records the server too.
  monitor = await startMonitorRecording(redis.port, dir);
});
afterAll(async () => {
  await redis?.stop();
  await monitor?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("WeCom apps on Redis", () => {
  it("leave no corp secret, token or ticket in logs, audit lines, errors, metrics or Redis keys", async () => {
    // The broker's wrong secret is unknown to the emulator: the scan learns it here.
    recordLeakCandidate("secret", WRONG);
    const logs = logSink();
    const audit = logSink();
    const b: EmulatedBroker = await startEmulatedBroker(
      {
        apps: [],
        wecomApps: [
          { id: "hr", corpid: CORP, agentid: String(HR.agentid), secret: HR.secret },
          { id: "oa", corpid: CORP, agentid: String(OA.agentid), secret: OA.secret },
          { id: "bad", corpid: CORP, agentid: String(HR.agentid), secret: WRONG },
          { id: "fenced", corpid: CORP, agentid: String(FENCED.agentid), secret: FENCED.secret },
        ],
        emulator: { wecom: { corps } },
        config: {
          upstream: { timeoutMs: 1000 },
          store: { type: "redis", url: redis.url, prefix: PREFIX },
          metrics: { listen: "127.0.0.1:0" },
        },
      },
      { logger: logs.logger, audit: audit.logger },
    );
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
    const tokens = createClient(TokenService, transport);
    const admin = createClient(AdminService, transport);
    const control = b.emulator.control;
    const errors: string[] = [];
    const fail = async (p: Promise<unknown>, code: Code) => {
      const err = await failure(p);
      expect(err.code, err.message).toBe(code);
      errors.push(err.message);
      return err;
    };
    let metrics = "";
    try {
      // Successes: every kind of two agents, a watch, a 42001 report WeCom answers with the same token.
      const hr = new Map<TokenKind, string>();
      for (const kind of KINDS) {
        hr.set(kind, (await tokens.getToken({ appId: "hr", kind })).token?.value ?? "");
        await tokens.getToken({ appId: "oa", kind });
      }
      const first = hr.get(TokenKind.ACCESS_TOKEN) ?? "";
      const confirmed = await tokens.invalidateToken({
        appId: "hr",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: first,
        errcode: 42001,
      });
      expect(confirmed.outcome).toBe(InvalidateOutcome.CONFIRMED_CURRENT);
      // WeCom invalidates the token early: a 40014 report and a watcher see the new one.
      const abort = new AbortController();
      const watch = tokens
        .watchToken({ appId: "hr", kind: TokenKind.ACCESS_TOKEN }, { signal: abort.signal })
        [Symbol.asyncIterator]();
      expect((await watch.next()).value?.token?.value).toBe(first);
      control.invalidateWecomToken(first);
      const refreshed = await tokens.invalidateToken({
        appId: "hr",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: first,
        errcode: 40014,
      });
      expect(refreshed.outcome).toBe(InvalidateOutcome.REFRESHED);
      expect((await watch.next()).value?.token?.version).toBe(2n);
      abort.abort();
      await watch.return?.().catch(() => undefined);
      const current = refreshed.token?.value ?? "";

      // Failures: a wrong secret (for a ticket too), 60020, WeCom's 40001 as a report.
      const wrong = await fail(
        tokens.getToken({ appId: "bad", kind: TokenKind.ACCESS_TOKEN }),
        Code.FailedPrecondition,
      );
      expect(wrong.rawMessage).toContain("40001");
      await fail(
        tokens.getToken({ appId: "bad", kind: TokenKind.WECOM_AGENT_TICKET }),
        Code.FailedPrecondition,
      );
      const fenced = await fail(
        tokens.getToken({ appId: "fenced", kind: TokenKind.ACCESS_TOKEN }),
        Code.FailedPrecondition,
      );
      expect(fenced.rawMessage).toContain("60020");
      await fail(
        tokens.invalidateToken({
          appId: "hr",
          kind: TokenKind.ACCESS_TOKEN,
          rejectedValue: current,
          errcode: 40001,
        }),
        Code.InvalidArgument,
      );
      // A report of a value the broker never issued.
      const foreign = await tokens.invalidateToken({
        appId: "oa",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: "someone-elses-wecom-token-0001",
        errcode: 40014,
      });
      expect(foreign.outcome).toBe(InvalidateOutcome.ALREADY_REPLACED);
      recordLeakCandidate("access_token", "someone-elses-wecom-token-0001");
      // WeCom's errmsg echoing the secret and the token: a known errcode, then an unknown one.
      const leaky = `secret ${OA.secret} token ${current} rid: 0a1b2c3d-4e5f6a7b`;
      // (each on its own ticket: a failure holds that credential's next fetches for a while).
      for (const [errcode, endpoint, kind] of [
        [48002, "/cgi-bin/ticket/get", TokenKind.WECOM_AGENT_TICKET],
        [61999, "/cgi-bin/get_jsapi_ticket", TokenKind.JSAPI_TICKET],
      ] as const) {
        control.injectFault({
          endpoint,
          action: { type: "errcode", errcode, errmsg: leaky },
          times: 1,
        });
        const ticket = (await tokens.getToken({ appId: "oa", kind })).token?.value ?? "";
        const err = await fail(
          tokens.invalidateToken({ appId: "oa", kind, rejectedValue: ticket, errcode: 42001 }),
          errcode === 48002 ? Code.FailedPrecondition : Code.Unknown,
        );
        expect(err.rawMessage).toContain(String(errcode));
      }
      // Operators: a token pasted as an audited reason, a refused clear, status.
      await fail(
        admin.clearQuota({ appId: "hr", reason: `leaked ${current}` }),
        Code.FailedPrecondition,
      );
      await fail(
        admin.forceRefresh({ appId: "hr", reason: `leaked ${HR.secret}` }),
        Code.FailedPrecondition,
      );
      const status = await admin.getStatus({});
      errors.push(JSON.stringify(status.credentials.map((c) => c.lastError)));
      errors.push(JSON.stringify(status.alerts.map((a) => a.summary)));
      metrics = await (await fetch(`${b.broker.metricsUrl}metrics`)).text();

      await expectNothingInKeys([HR.secret, OA.secret, WRONG, FENCED.secret, current, first]);
    } finally {
      await b.close();
    }

    // Everything the emulator issued, plus the secrets, is what must not show.
    const candidates: Array<{ kind: LeakCandidateKind; value: string }> = [
      ...[HR, OA, FENCED].map((a) => ({ kind: "secret" as const, value: a.secret })),
      { kind: "secret", value: WRONG },
      ...control.wecomTokens().map((t) => ({ kind: "access_token" as const, value: t.value })),
      ...control.wecomTickets().map((t) => ({ kind: "ticket" as const, value: t.value })),
    ];
    const shown = [errors.join("\n"), metrics].join("\n");
    for (const c of candidates)
      expect(shown, `${c.kind} in an error or metric`).not.toContain(c.value);
    expect(metrics).toMatch(/tokenbroker_credential_remaining_seconds\{app="hr"/);
    expect(audit.lines().map((l) => [l.event, l.outcome])).toEqual(
      expect.arrayContaining([
        ["clear_quota", "refused"],
        ["force_refresh", "refused"],
      ]),
    );

    await redis.stop();
    await monitor?.close();
    monitor = undefined;
    writeFileSync(
      join(dir, "values-test.ndjson"),
      candidates.map((c) => `${JSON.stringify(c)}\n`).join(""),
    );
    const suite = leakRecordDir();
    if (suite)
      for (const f of readdirSync(suite).filter((f) => /^values-.*\.ndjson$/.test(f))) {
        // Other workers append meanwhile: complete lines only.
        const text = readFileSync(join(suite, f), "utf8");
        writeFileSync(join(dir, `values-suite-${f}`), text.slice(0, text.lastIndexOf("\n") + 1));
      }
    writeFileSync(join(dir, "logs-broker.log"), logs.text());
    writeFileSync(join(dir, "logs-audit.log"), audit.text());
    writeFileSync(join(dir, "logs-errors.log"), `${shown}\n`);
    // A plaintext store keeps each value in its value field (the scanner's exemption); nothing else.
    const report = scanLeakRecords(dir);
    expect(report.hits, describeLeakReport(report)).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.values.secret).toBeGreaterThanOrEqual(4);
    expect(report.values.access_token).toBeGreaterThanOrEqual(3);
    expect(report.values.ticket).toBeGreaterThanOrEqual(3);
    expect(report.logLines).toBeGreaterThan(20);
    // The recording holds the WeCom credentials' writes: the scan saw the store at work.
    const commands = monitorCommands(dir);
    for (const kind of ["access_token", "jsapi_ticket", "wecom_agent_ticket"])
      expect(commands.some((args) => args.some((a) => a.includes(`{hr/${kind}}:cred`)))).toBe(true);
  });
});

/** Every key under the prefix, while the broker still runs. */
async function expectNothingInKeys(secrets: readonly string[]): Promise<void> {
  const client = connect(redis.url, "leak-inspector");
  try {
    const keys = await client.keys(`${PREFIX}:*`);
    expect(keys).toContain(`${PREFIX}:{hr/wecom_agent_ticket}:cred`);
    for (const key of keys) for (const s of secrets) expect(key).not.toContain(s);
  } finally {
    client.disconnect();
  }
}

function monitorCommands(folder: string): string[][] {
  return readdirSync(folder)
    .filter((f) => f.endsWith(".monitor"))
    .flatMap((f) => readFileSync(join(folder, f), "latin1").split("\r\n"))
    .map((line) => parseMonitorLine(line))
    .filter((args): args is string[] => args !== undefined);
}
