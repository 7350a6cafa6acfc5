import { execFile, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";

const run = promisify(execFile);
const BIN = "bin/token-broker.js";
const APP = { id: "web", appid: "wx000000000000oc01", secret: "web-secret-oauth-cli-01" };

interface Ran {
  code?: number;
  stdout: string;
  stderr: string;
}

// Each command is a fresh node process that compiles the CLI with tsx: seconds each on a busy machine.
describe("token-broker oauth and users' tokens (issue 11)", { timeout: 180_000 }, () => {
  let h: BrokerHarness;
  beforeAll(async () => {
    h = await startBrokerHarness([APP], 500);
  });
  afterAll(async () => {
    await h?.close();
  });

  const cli = (args: string[]): Promise<Ran> =>
    run(process.execPath, [BIN, ...args, "--addr", h.grpcAddress], {
      env: { ...process.env, TOKEN_BROKER_API_KEY: "" },
    }).catch((e: Ran) => e);
  const mint = (openid: string, unionid?: string) =>
    h.emulator.control.authorizeUser(APP.appid, {
      openid,
      scope: unionid ? "snsapi_userinfo" : "snsapi_base",
      ...(unionid ? { unionid } : {}),
    }).code;
  const userToken = (openid: string) =>
    h.emulator.control.oauthGrants(APP.appid, openid).at(-1)?.accessToken;

  it("exchange prints the user and the token's fingerprint; get, watch and invalidate take --subject", async () => {
    const code = mint("o-cli-1", "u-cli-union");
    const exchanged = await cli(["oauth", "exchange", "--app", "web", "--code", code]);
    const grant = JSON.parse(exchanged.stdout) as Record<string, unknown>;
    expect(grant).toMatchObject({
      app: "web",
      openid: "o-cli-1",
      unionid: "u-cli-union",
      scope: "snsapi_userinfo",
      snapshot: false,
      version: "1",
    });
    expect(grant.value).toBeUndefined();
    expect(grant.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(Date.parse(String(grant.expiresAt)) - Date.now()).toBeGreaterThan(7000_000);
    expect(Date.parse(String(grant.refreshExpiresAt)) - Date.now()).toBeGreaterThan(
      29 * 86_400_000,
    );
    expect(exchanged.stdout).not.toContain(code);

    const user = ["--app", "web", "--kind", "user_access_token", "--subject", "o-cli-1"];
    const watcher = spawn(process.execPath, [BIN, "watch", ...user, "--addr", h.grpcAddress], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const watched = new Promise<string>((resolve, reject) => {
      createInterface({ input: watcher.stdout }).once("line", resolve);
      watcher.once("exit", (c) => reject(new Error(`watch exited with ${c}`)));
    });
    const [got, invalidated] = await Promise.all([
      cli(["get", ...user, "--reveal"]),
      cli(["invalidate", ...user, "--value", "not-the-users-token-000000", "--errcode", "40001"]),
    ]);
    const token = JSON.parse(got.stdout) as Record<string, unknown>;
    expect(token).toMatchObject({
      app: "web",
      kind: "user_access_token",
      subject: "o-cli-1",
      fingerprint: grant.fingerprint,
      refreshExpiresAt: grant.refreshExpiresAt,
    });
    expect(token.value).toBe(userToken("o-cli-1"));
    expect(JSON.parse(invalidated.stdout)).toMatchObject({
      subject: "o-cli-1",
      outcome: "ALREADY_REPLACED",
    });
    const first = JSON.parse(await watched) as Record<string, unknown>;
    watcher.kill("SIGINT");
    expect(first).toMatchObject({ kind: "user_access_token", subject: "o-cli-1", version: "1" });
  });

  it("forget deletes the grant; then get and a bad code say the user must authorize again, exit 3", async () => {
    await cli(["oauth", "exchange", "--app", "web", "--code", mint("o-cli-2")]);
    const forgot = await cli(["oauth", "forget", "--app", "web", "--openid", "o-cli-2"]);
    expect(JSON.parse(forgot.stdout)).toEqual({ app: "web", openid: "o-cli-2", forgotten: true });

    const [gone, badCode] = await Promise.all([
      cli(["get", "--app", "web", "--kind", "user_access_token", "--subject", "o-cli-2"]),
      cli(["oauth", "exchange", "--app", "web", "--code", "not-a-real-code-0000"]),
    ]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^token-broker: FailedPrecondition: .*o-cli-2/m);
    expect(gone.stderr).toMatch(
      /^token-broker: the user 'o-cli-2' of app 'web' must authorize again \(reason REAUTHORIZE\)/m,
    );
    expect(badCode.code).toBe(3);
    expect(badCode.stderr).toMatch(
      /^token-broker: InvalidArgument: WeChat refused the authorization code/m,
    );
    expect(badCode.stderr).toMatch(
      /must authorize again \(reason REAUTHORIZE, WeChat errcode 40029\)/,
    );
    expect(badCode.stderr).not.toContain("not-a-real-code-0000");
  });

  it("refuses oauth without a subcommand or without --code, exit 2", async () => {
    const [bare, noCode] = await Promise.all([
      cli(["oauth"]),
      cli(["oauth", "exchange", "--app", "web"]),
    ]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("oauth needs one of: exchange, forget");
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toContain("--code is required");
  });
});
