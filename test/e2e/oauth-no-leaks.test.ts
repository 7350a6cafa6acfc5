import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { isSealedValue } from "../../src/store/sealing/value-cipher.js";
import { failure } from "../helpers/connect-failure.js";
import {
  describeLeakReport,
  type LeakCandidateKind,
  leakRecordDir,
  type MonitorRecording,
  parseMonitorLine,
  scanLeakRecords,
  startMonitorRecording,
} from "../helpers/leak-recorder.js";
import { OAUTH_APP, startOAuthRedisBroker } from "../helpers/oauth-redis-broker.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { connect } from "../store/redis/helpers.js";

/**
 * Issue 11, "no code, access token or refresh token of a user in any log line
 * or Redis key, and values encrypted in Redis": the whole OAuth flow
 * (exchange, a repeated exchange, refresh, a void grant, forget) through the
 * production broker on a real Redis with encryption keys, then a leak scan of
 * its own recording with nothing exempt: with keys, every value, refresh
 * token and exchange outcome that reaches Redis must be ciphertext.
 */

const PREFIX = "leaks";
const KEY = randomBytes(32).toString("base64");
const REFRESH = "/sns/oauth2/refresh_token";

let redis: RedisServer;
let dir: string;
let monitor: MonitorRecording | undefined;
beforeAll(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(join(tmpdir(), "oauth-no-leaks-"));
  // A recording of our own, scanned below without the plaintext-store exemptions.
  monitor = await startMonitorRecording(redis.port, dir);
});
afterAll(async () => {
  await redis?.stop();
  await monitor?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("users' OAuth grants on Redis with encryption keys", () => {
  it("leave no code, token or refresh token in log lines, audit lines, Redis commands or keys", async () => {
    const h = await startOAuthRedisBroker({ redisUrl: redis.url, prefix: PREFIX, key: KEY });
    const candidates: Array<{ kind: LeakCandidateKind; value: string }> = [
      { kind: "secret", value: OAUTH_APP.secret },
      { kind: "secret", value: KEY },
    ];
    const users = ["o-leak-keep", "o-leak-void", "o-leak-forget"];
    try {
      // Exchange (one code twice: the repeat is answered from the exchange ledger).
      for (const [i, openid] of users.entries()) {
        const code = h.mint(openid, i === 0 ? "u-leak-union" : undefined);
        candidates.push({ kind: "oauth_code", value: code });
        const grant = await h.oauth.exchangeCode({ appId: OAUTH_APP.id, code });
        expect(grant.openid).toBe(openid);
        candidates.push({ kind: "access_token", value: grant.token?.value ?? "" });
        if (i === 0) {
          const again = await h.oauth.exchangeCode({ appId: OAUTH_APP.id, code });
          expect(again.token?.value).toBe(grant.token?.value);
        }
      }
      const req = (subject: string) => ({
        appId: OAUTH_APP.id,
        kind: TokenKind.USER_ACCESS_TOKEN,
        subject,
      });
      // Refresh: past the access token's expiry, one call with the refresh token.
      h.emulator.control.voidRefreshToken(OAUTH_APP.appid, { openid: "o-leak-void" });
      await h.clock.advance(7_300_000);
      const refreshed = await h.tokens.getToken(req("o-leak-keep"));
      candidates.push({ kind: "access_token", value: refreshed.token?.value ?? "" });
      expect(h.emulator.control.callCount(REFRESH, OAUTH_APP.appid)).toBe(1);
      // Void: WeChat refuses the refresh token (40030); the grant is deleted.
      const voided = await failure(h.tokens.getToken(req("o-leak-void")));
      expect(voided.code).toBe(Code.FailedPrecondition);
      expect(voided.findDetails(ErrorInfoSchema)[0]?.reason).toBe("REAUTHORIZE");
      // Forget.
      expect(
        (await h.oauth.forgetUser({ appId: OAUTH_APP.id, openid: "o-leak-forget" })).forgotten,
      ).toBe(true);

      for (const openid of users)
        for (const g of h.emulator.control.oauthGrants(OAUTH_APP.appid, openid)) {
          candidates.push({ kind: "access_token", value: g.accessToken });
          candidates.push({ kind: "refresh_token", value: g.refreshToken });
        }
      await expectSealedAtRest(candidates.map((c) => c.value));
    } finally {
      await h.close();
    }

    // Audit lines for exchange and forget: the openid as is, never a code or token.
    const audit = h.audit.lines();
    const exchanges = audit.filter((l) => l.event === "oauth_exchange");
    expect(exchanges.map((l) => [l.openid, l.outcome])).toEqual([
      ["o-leak-keep", "ok"],
      ["o-leak-keep", "ok"],
      ["o-leak-void", "ok"],
      ["o-leak-forget", "ok"],
    ]);
    expect(audit.filter((l) => l.event === "oauth_forget")).toEqual([
      expect.objectContaining({ openid: "o-leak-forget", app: OAUTH_APP.id, forgotten: true }),
    ]);
    const auditText = h.audit.text();
    for (const c of candidates) expect(auditText).not.toContain(c.value);

    // The scan: this test's values, plus every value the suite recorded so far.
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
    writeFileSync(join(dir, "logs-broker.log"), h.logs.text());
    writeFileSync(join(dir, "logs-audit.log"), auditText);
    const report = scanLeakRecords(dir, { exemptStored: false });
    expect(report.hits, describeLeakReport(report)).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.values.oauth_code).toBeGreaterThanOrEqual(3);
    expect(report.values.refresh_token).toBeGreaterThanOrEqual(3);
    expect(report.logLines).toBeGreaterThan(5);
    // The recording holds the writes that matter: grants, exchange outcomes, deletes.
    const commands = monitorCommands(dir);
    const names = (pattern: RegExp) =>
      commands.filter((args) => args.some((a) => pattern.test(a))).length;
    expect(names(/:oauth-exchange:/)).toBeGreaterThanOrEqual(3);
    expect(names(/user_access_token\/o-leak-keep\}:cred$/)).toBeGreaterThan(0);
  });
});

/** Every key in Redis, and what the grants and exchanges hold, while the broker still runs. */
async function expectSealedAtRest(secrets: readonly string[]): Promise<void> {
  const client = connect(redis.url, "leak-inspector");
  try {
    const keys = await client.keys(`${PREFIX}:*`);
    expect(keys.some((k) => k.includes(":oauth-exchange:"))).toBe(true);
    for (const key of keys) for (const s of secrets) expect(key).not.toContain(s);
    for (const key of keys.filter((k) => k.includes(":oauth-exchange:"))) {
      const record = JSON.parse((await client.get(key)) ?? "{}") as { outcome?: string };
      if (record.outcome !== undefined) expect(isSealedValue(record.outcome)).toBe(true);
    }
    const grant = await client.hgetall(
      `${PREFIX}:{${OAUTH_APP.id}/user_access_token/o-leak-keep}:cred`,
    );
    expect(isSealedValue(grant.value ?? "")).toBe(true);
    expect(isSealedValue(grant.state ?? "")).toBe(true);
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
