import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pinned } from "./child.js";

export interface H2loadOptions {
  /** Full URL including the path, `http://` for h2c. */
  readonly url: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** Connections (`-c`). */
  readonly clients: number;
  /** Concurrent streams per connection (`-m`). */
  readonly streams: number;
  /** Measured seconds (`-D`). */
  readonly seconds: number;
  /** Unmeasured warm-up seconds (`--warm-up-time`). */
  readonly warmupSeconds: number;
  /** `taskset -c` argument for h2load. */
  readonly cpus?: string;
}

export interface H2loadResult {
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

/**
 * Drives `h2load` against one URL with a fixed body and returns req/s from
 * its summary and p50/p99 from its per-request log (`--log-file`: start
 * time, status, microseconds until the response ended).
 */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const dir = await mkdtemp(join(tmpdir(), "bench-h2load-"));
  try {
    const bodyFile = join(dir, "body");
    const logFile = join(dir, "log");
    await writeFile(bodyFile, options.body);
    const args = [
      "-c",
      String(options.clients),
      "-m",
      String(options.streams),
      "-t",
      "1",
      "-D",
      String(options.seconds),
      "--warm-up-time",
      String(options.warmupSeconds),
      "-d",
      bodyFile,
      "--log-file",
      logFile,
      ...Object.entries(options.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
      options.url,
    ];
    const [command, fullArgs] = options.cpus
      ? pinned(options.cpus, "h2load", args)
      : ["h2load", args];
    const out = await run(command, fullArgs);
    const rps = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out);
    const reqs =
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
    if (!rps?.[1] || !reqs) throw new Error(`cannot parse h2load output:\n${out}`);
    const latencies = (await readFile(logFile, "utf8"))
      .split("\n")
      .map((line) => Number(line.split("\t")[2]))
      .filter((us) => Number.isFinite(us) && us > 0)
      .sort((a, b) => a - b);
    return {
      reqPerSec: Number(rps[1]),
      p50Ms: quantile(latencies, 0.5) / 1000,
      p99Ms: quantile(latencies, 0.99) / 1000,
      done: Number(reqs[3]),
      succeeded: Number(reqs[4]),
      failed: Number(reqs[5]),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
