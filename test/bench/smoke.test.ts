import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Keeps the benchmarks working: `bench/run.ts --smoke` (every section, a few
 * seconds each) must finish and write a table for each. Figures are not
 * checked: benchmarks never fail CI on timing.
 */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Section name for `--only`, and the start of its title in BENCHMARKS.md. */
const SECTIONS: ReadonlyArray<readonly [string, string]> = [
  ["hot-path", "Hot path: GetToken, cached"],
  ["fanout", "WatchToken fan-out"],
  ["economy", "Upstream economy"],
  ["scale", "Scale: "],
  ["grants", "Users' grants: "],
];

/** The hot path needs h2load (nghttp2-client), which the test deps install when they can. */
const hasH2load = spawnSync("h2load", ["--version"], { stdio: "ignore" }).status === 0;

describe("benchmarks, smoke run", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs every benchmark and writes every section with its rows", async () => {
    const out = join(dir, "BENCHMARKS.md");
    const sections = SECTIONS.filter(([name]) => hasH2load || name !== "hot-path");
    if (!hasH2load) console.warn("bench smoke: h2load is missing, so the hot path is left out");
    const only = sections.map(([name]) => name).join(",");
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", join(ROOT, "bench/run.ts"), "--smoke", "--only", only, "--out", out],
      { cwd: ROOT, env: benchEnv(), maxBuffer: 64 * 1024 * 1024 },
    );
    const markdown = await readFile(out, "utf8");
    expect(markdown).toContain("- Mode: smoke");
    expect(markdown).not.toContain("FAILED");
    for (const [, title] of sections) {
      const at = markdown.indexOf(`## ${title}`);
      expect(at, title).toBeGreaterThanOrEqual(0);
      // A table with at least one row after the header.
      expect(
        markdown
          .slice(at)
          .split("\n")
          .filter((l) => /^\| [^-]/.test(l)).length,
      ).toBeGreaterThan(1);
    }
  }, 300_000);
});

/**
 * The environment without the leak scan's recording switch: the economy
 * benchmark runs co-wechat-api, which stores tokens in Redis in plain text
 * by design (that is the peer being compared, not the broker). The broker's
 * own Redis traffic is scanned throughout the rest of the suite.
 */
function benchEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TOKEN_BROKER_LEAK_RECORD_DIR;
  return env;
}
