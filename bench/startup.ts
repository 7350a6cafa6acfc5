/**
 * Start-up of `token-broker serve`: the compiled build (what the image runs)
 * against the TypeScript sources through tsx (a development checkout), with
 * 1,000 apps configured and with one. Time from spawn to the "token broker
 * serving" line, which the broker logs once health answers SERVING.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Bench, BenchRow, BenchSection } from "./contract.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Start {
  /** Spawn to the "token broker serving" line. */
  ms: number;
  /** Peak resident memory (VmHWM) once serving. */
  rssMb: number;
}

/**
 * `npm run build` into a scratch copy laid out as the image's runtime:
 * package.json, bin/, dist/, and the tree's node_modules (linked). Without
 * src/ there, bin/token-broker.js runs dist/.
 */
function buildRuntime(dir: string, log: (l: string) => void): string {
  const started = Date.now();
  const app = join(dir, "app");
  mkdirSync(app);
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules/typescript/bin/tsc"),
      "-p",
      join(ROOT, "tsconfig.build.json"),
      "--outDir",
      join(app, "dist"),
      "--sourceMap",
      "false",
    ],
    { stdio: "inherit" },
  );
  execFileSync(process.execPath, [join(ROOT, "scripts/copy-lua.mjs"), join(app, "dist")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  copyFileSync(join(ROOT, "package.json"), join(app, "package.json"));
  cpSync(join(ROOT, "bin"), join(app, "bin"), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
  log(`startup: compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return join(app, "bin/token-broker.js");
}

function writeConfig(dir: string, apps: number): string {
  const file = join(dir, `config-${apps}.yaml`);
  const lines = [
    "listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }",
    // Nothing is fetched: no prefetch, and nothing listens upstream.
    'upstream: { baseUrl: "http://127.0.0.1:9", timeoutMs: 1000 }',
    "log: { level: info }",
    "apps:",
  ];
  for (let i = 0; i < apps; i++) {
    const appid = `wx${i.toString(16).padStart(16, "0")}`;
    lines.push(
      `  - { id: app${i}, appid: ${appid}, secret: { env: BENCH_APPSECRET }, prefetch: false }`,
    );
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** One start: spawn, wait for "token broker serving", read peak RSS, SIGTERM, wait for exit. */
function startOnce(bin: string, config: string, runtime: "compiled" | "sources"): Promise<Start> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, "serve", "--config", config], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        TOKEN_BROKER_RUNTIME: runtime,
        BENCH_APPSECRET: "bench-secret-not-real-01",
      },
    });
    let result: Start | undefined;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (result || !line.includes('"msg":"token broker serving"')) return;
      const ms = performance.now() - t0;
      let rssMb = Number.NaN;
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
        if (kb) rssMb = Number(kb) / 1024;
      } catch {
        // no /proc: memory left out
      }
      result = { ms, rssMb };
      child.kill("SIGTERM");
    });
    child.on("exit", (code) => {
      if (result && code === 0) resolve(result);
      else
        reject(
          new Error(
            `serve (${runtime}) exited with ${code} ${result ? "after" : "before"} serving`,
          ),
        );
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

export const startup: Bench = async (ctx): Promise<BenchSection> => {
  const rounds = ctx.mode === "full" ? 7 : 1;
  const many = ctx.mode === "full" ? 1000 : 100;
  const dir = mkdtempSync(join(tmpdir(), "bench-startup-"));
  try {
    const compiledBin = buildRuntime(dir, ctx.log);
    const sourcesBin = join(ROOT, "bin/token-broker.js");
    const configs = { many: writeConfig(dir, many), one: writeConfig(dir, 1) };
    const results: Record<string, Start[]> = {};
    const targets = [
      ["compiled", "many", compiledBin],
      ["sources", "many", sourcesBin],
      ["compiled", "one", compiledBin],
      ["sources", "one", sourcesBin],
    ] as const;
    // A discarded first start of each warms the file cache (and tsx's own cache).
    for (const [runtime, apps, bin] of targets) await startOnce(bin, configs[apps], runtime);
    for (let r = 0; r < rounds; r++) {
      for (const [runtime, apps, bin] of targets) {
        const start = await startOnce(bin, configs[apps], runtime);
        const key = `${runtime}/${apps}`;
        results[key] = [...(results[key] ?? []), start];
        ctx.log(
          `startup: ${runtime}, ${apps === "many" ? many : 1} app(s): ${start.ms.toFixed(0)} ms`,
        );
      }
    }
    const ms = (key: string) => round(median((results[key] ?? []).map((s) => s.ms)));
    const rss = (key: string) => round(median((results[key] ?? []).map((s) => s.rssMb)), 1);
    const rows: BenchRow[] = [
      {
        metric: `serve start-up to SERVING, compiled build (dist/), ${many} apps`,
        value: ms("compiled/many"),
        baseline: ms("sources/many"),
        baselineName: "the same start through tsx (TypeScript sources, a development checkout)",
        unit: "ms",
      },
      {
        metric: "serve start-up to SERVING, compiled build (dist/), 1 app",
        value: ms("compiled/one"),
        baseline: ms("sources/one"),
        baselineName: "the same start through tsx (TypeScript sources, a development checkout)",
        unit: "ms",
      },
      {
        metric: `peak RSS once serving, compiled build, ${many} apps`,
        value: rss("compiled/many"),
        baseline: rss("sources/many"),
        baselineName: "the same start through tsx (TypeScript sources, a development checkout)",
        unit: "MB",
      },
    ];
    return {
      title: `Start-up: serve with ${many} apps, compiled against tsx`,
      rows,
      notes: [
        `Wall time from spawning \`node bin/token-broker.js serve --config FILE\` to its "token broker serving" log line ` +
          "(logged right after health turns SERVING), then SIGTERM (every start must exit 0). Compiled: `npm run build`'s " +
          "output in a scratch copy laid out as the image's runtime (bin/, dist/, the tree's node_modules), so the bin " +
          "runs dist/; tsx: the development checkout's bin with TOKEN_BROKER_RUNTIME=sources. Median of " +
          `${rounds} alternating round(s) after one discarded start of each.`,
        `Config: ${many} official-account apps (secret from an env var, no prefetch, nothing listening upstream), ` +
          "the memory store, listeners on loopback port 0, log level info. Start-up here is loading the code " +
          "(tsx compiles every source file on the fly; its cache is warm after the first start) and validating " +
          "the config; the apps' credentials are fetched on first request.",
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
