/**
 * Runs the benchmarks, prints a table per section and (in full mode) writes
 * BENCHMARKS.md. Usage:
 *
 *   npx tsx bench/run.ts [--smoke] [--only name[,name]] [--out file]
 *
 * `--smoke` runs each benchmark for seconds only, to prove it works, and
 * writes no file unless `--out` is given. A benchmark whose file is not there
 * (yet) is skipped with a note; one that throws becomes a section saying so,
 * and the run exits non-zero.
 */

import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Bench, BenchContext, BenchSection } from "./contract.js";
import { buildForBench } from "./lib/build.js";
import { machine, markdown, textTable } from "./lib/report.js";

/** Benchmarks in run order: name and module, relative to this file. */
const BENCHES: readonly { name: string; file: string }[] = [
  { name: "hot-path", file: "./hot-path.ts" },
  { name: "fanout", file: "./fanout.ts" },
  { name: "economy", file: "./economy.ts" },
  { name: "scale", file: "./scale.ts" },
  { name: "grants", file: "./grants.ts" },
  { name: "startup", file: "./startup.ts" },
];

function argValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The module's default export, else one named `bench`, else its only exported function. */
function benchOf(mod: Record<string, unknown>): Bench | undefined {
  const candidates = [mod.default, mod.bench, ...Object.values(mod)];
  return candidates.find((c): c is Bench => typeof c === "function");
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const mode: BenchContext["mode"] = args.includes("--smoke") ? "smoke" : "full";
  const only = argValue(args, "--only")?.split(",");
  const out =
    argValue(args, "--out") ??
    (mode === "full" ? fileURLToPath(new URL("../BENCHMARKS.md", import.meta.url)) : undefined);
  const ctx: BenchContext = {
    mode,
    log: (line) => process.stderr.write(`${line}\n`),
  };

  const sections: BenchSection[] = [];
  let failed = false;
  const started = Date.now();
  buildForBench(ctx.log);
  for (const { name, file } of BENCHES) {
    if (only && !only.includes(name)) continue;
    const url = new URL(file, import.meta.url);
    if (!existsSync(url)) {
      ctx.log(`bench: ${name}: ${file} is not there, skipped`);
      continue;
    }
    const t0 = Date.now();
    ctx.log(`bench: ${name} (${mode})`);
    let section: BenchSection;
    try {
      const bench = benchOf((await import(url.href)) as Record<string, unknown>);
      if (!bench) throw new Error(`${file} exports no benchmark function`);
      section = await bench(ctx);
    } catch (err) {
      failed = true;
      section = {
        title: name,
        rows: [],
        notes: [`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`],
      };
    }
    ctx.log(`bench: ${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    sections.push(section);
    process.stdout.write(`\n${textTable(section)}\n`);
  }
  ctx.log(`bench: all done in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  if (out) {
    await writeFile(out, markdown(machine(), sections, mode));
    ctx.log(`bench: wrote ${out}`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
