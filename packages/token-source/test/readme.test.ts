import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EmulatedBroker, startEmulatedBroker } from "../../../src/emulated-broker.js";
import { silentLogger } from "../../../src/shared/logger.js";

/**
 * The READMEs' examples run as written: the package is built as it would be
 * published (dist/ with declarations), each example is saved next to it and
 * run by Node, importing the package by its name, against the production
 * broker in front of the WeChat emulator.
 */

const run = promisify(execFile);
const PACKAGE = "packages/token-source";
const DEMO = { id: "demo", appid: "wx00000000000000d7", secret: "demo-secret-readme-000" };

let b: EmulatedBroker;
const written: string[] = [];
beforeAll(async () => {
  await run("npm", ["run", "build", "-w", "@wechat-token-broker/token-source"], {
    timeout: 120_000,
  });
  b = await startEmulatedBroker(
    { apps: [DEMO] },
    { logger: silentLogger(), audit: silentLogger() },
  );
}, 180_000);
afterAll(async () => {
  await b?.close();
  for (const f of written) rmSync(f, { force: true });
});

/** The code between `<!-- marker:start -->` and `<!-- marker:end -->`, without its fence. */
function exampleIn(readme: string, marker: string): string {
  const text = readFileSync(readme, "utf8");
  const block = new RegExp(
    `<!-- ${marker}:start -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${marker}:end -->`,
  ).exec(text)?.[1];
  if (!block) throw new Error(`no ${marker} block in ${readme}`);
  return block;
}

async function runExample(code: string, name: string) {
  // Inside the package, so the bare import resolves to it through the workspace link.
  const file = join(PACKAGE, "dist", `${name}.ts`);
  writeFileSync(file, code);
  written.push(file);
  return run(process.execPath, ["--import", "tsx", file], {
    timeout: 60_000,
    env: {
      ...process.env,
      BROKER_ADDRESS: `127.0.0.1:${b.broker.grpc.port}`,
      APP_ID: DEMO.id,
      WECHAT_API: b.emulatorUrl,
    },
  });
}

describe("README examples", { timeout: 120_000 }, () => {
  it("the package README's example gets a token, calls WeChat with it and logs only its fingerprint", async () => {
    const { stdout } = await runExample(
      exampleIn(join(PACKAGE, "README.md"), "example"),
      "readme-example",
    );
    expect(stdout).toMatch(/^ready: true state: fresh$/m);
    expect(stdout).toMatch(/^WeChat answered errcode 0 with \d+ IPs$/m);
    expect(stdout).toMatch(/^version 1 fingerprint [0-9a-f]{12} via streaming$/m);
    for (const t of b.emulator.control.liveTokens()) expect(stdout).not.toContain(t.value);
    expect(b.emulator.control.callCount("/cgi-bin/token", DEMO.appid)).toBe(1);
  });

  it("the root README's example runs the same way", async () => {
    const { stdout } = await runExample(
      exampleIn("README.md", "token-source-example"),
      "root-readme-example",
    );
    expect(stdout).toMatch(/^state fresh, version \d+, fingerprint [0-9a-f]{12}$/m);
    expect(stdout).toMatch(/^getcallbackip: \d+ IPs$/m);
    for (const t of b.emulator.control.liveTokens()) expect(stdout).not.toContain(t.value);
  });
});
