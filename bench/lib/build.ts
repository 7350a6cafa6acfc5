import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../../", import.meta.url);
const OUT = new URL(".bench-build/", ROOT);

/**
 * Compiles the benchmarks and what they import (src/, gen/) with tsc into
 * `.bench-build/`, the Redis scripts copied beside them, so that every server
 * under test runs plain compiled JavaScript, as `npm run build` deploys it. Run through
 * tsx instead, esbuild's keepNames wraps every function in a `__name` call
 * that gives it a property of its own: measured on 10,000 WatchToken
 * streams, that alone added kilobytes per stream and time per call.
 */
export function buildForBench(log: (line: string) => void): void {
  const started = Date.now();
  execFileSync(
    process.execPath,
    [tscBin(), "-p", fileURLToPath(new URL("tsconfig.bench.json", ROOT))],
    {
      stdio: "inherit",
    },
  );
  // The Redis scripts beside the compiled JS, as `npm run build` deploys them.
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("scripts/copy-lua.mjs", ROOT)), fileURLToPath(OUT)],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  process.env.BENCH_BUILD_DIR = fileURLToPath(OUT);
  log(
    `bench: compiled with tsc into .bench-build/ in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

function tscBin(): string {
  return fileURLToPath(new URL("node_modules/typescript/bin/tsc", ROOT));
}

/**
 * How to run one of the bench's own TypeScript entry points in a child:
 * its compiled file when {@link buildForBench} ran, else the source via tsx.
 */
export function childEntry(sourceUrl: URL): { file: string; execArgv: string[] } {
  const source = fileURLToPath(sourceUrl);
  const dir = process.env.BENCH_BUILD_DIR;
  if (dir) {
    const rel = source.slice(fileURLToPath(ROOT).length).replace(/\.ts$/, ".js");
    const compiled = `${dir}${rel}`;
    if (existsSync(compiled)) return { file: compiled, execArgv: [] };
  }
  return { file: source, execArgv: ["--import", "tsx"] };
}
