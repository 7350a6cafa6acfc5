/**
 * A/B of this working tree against an earlier revision, on the same machine
 * in the same session: the two run alternately (A, B, A, B, …), so a noisy
 * neighbour or a warm CPU hurts both alike, and each metric is reported as
 * the median over the rounds with the ratio of the two medians. Usage:
 *
 *   npx tsx bench/against.ts <revision> [--only fanout] [--rounds 3]
 *
 * The revision is checked out into a temporary git worktree that shares this
 * tree's node_modules (so the script refuses a revision whose package.json
 * names a dependency this tree lacks or pins differently). Why: a ratio to a same-run
 * baseline still moves by tens of percent between runs on a busy machine, so
 * "no regression" is only a claim when the old code is measured beside the new.
 */

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function argValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Each row of a BENCHMARKS-style markdown table: metric → value (its number). */
type Rows = Map<string, { value: number; unit: string }>;

export function parseRows(markdown: string): Rows {
  const rows: Rows = new Map();
  for (const line of markdown.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // | metric | value | baseline | ratio | goal | met |
    if (cells.length < 4) continue;
    const [, metric, value] = cells;
    const m = /^(-?[\d,.]+)\s*(.*)$/.exec(value ?? "");
    if (!metric || !m?.[1]) continue;
    rows.set(metric, { value: Number(m[1].replace(/,/g, "")), unit: m[2] ?? "" });
  }
  return rows;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The old revision's dependencies that this tree lacks or pins to another version. */
export function missingDependencies(old: PackageJson, now: PackageJson): string[] {
  const have = { ...now.dependencies, ...now.devDependencies };
  return Object.entries({ ...old.dependencies, ...old.devDependencies })
    .filter(([name, version]) => have[name] !== version)
    .map(([name, version]) => `${name}@${version}`);
}

function runBench(dir: string, only: string, out: string): Rows {
  const r = spawnSync("npx", ["tsx", "bench/run.ts", "--only", only, "--out", out], {
    cwd: dir,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) throw new Error(`bench in ${dir} exited with ${r.status}`);
  return parseRows(readFileSync(out, "utf8"));
}

function main(): void {
  const args = process.argv.slice(2);
  const rev = args[0];
  if (!rev || rev.startsWith("--")) {
    process.stderr.write(
      "usage: npx tsx bench/against.ts <revision> [--only fanout] [--rounds 3]\n",
    );
    process.exit(2);
  }
  const only = argValue(args, "--only") ?? "fanout";
  const rounds = Number(argValue(args, "--rounds") ?? "3");
  const git = (...a: string[]) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
  const commit = git("rev-parse", "--verify", `${rev}^{commit}`);
  const missing = missingDependencies(
    JSON.parse(git("show", `${commit}:package.json`)) as PackageJson,
    JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson,
  );
  if (missing.length > 0) {
    process.stderr.write(
      `against: ${rev} needs dependencies this tree does not have (${missing.join(", ")}); benchmark it from a clone of its own\n`,
    );
    process.exit(2);
  }
  const scratch = mkdtempSync(join(tmpdir(), "bench-against-"));
  const old = join(scratch, "tree");
  git("worktree", "add", "--detach", "--quiet", old, commit);
  try {
    symlinkSync(join(ROOT, "node_modules"), join(old, "node_modules"));
    const runs: { old: Rows[]; now: Rows[] } = { old: [], now: [] };
    for (let i = 1; i <= rounds; i++) {
      process.stderr.write(`against: round ${i}/${rounds}: ${rev}\n`);
      runs.old.push(runBench(old, only, join(scratch, `old-${i}.md`)));
      process.stderr.write(`against: round ${i}/${rounds}: working tree\n`);
      runs.now.push(runBench(ROOT, only, join(scratch, `now-${i}.md`)));
    }
    const metrics = [...(runs.now[0]?.keys() ?? [])].filter((m) => runs.old[0]?.has(m));
    process.stdout.write(
      `\n${only}: working tree against ${rev} (${commit.slice(0, 7)}), median of ${rounds} alternating runs\n\n`,
    );
    for (const metric of metrics) {
      const of = (set: Rows[]) => median(set.map((r) => r.get(metric)?.value ?? Number.NaN));
      const unit = runs.now[0]?.get(metric)?.unit ?? "";
      const a = of(runs.old);
      const b = of(runs.now);
      const all = (set: Rows[]) => set.map((r) => r.get(metric)?.value).join(", ");
      process.stdout.write(
        `${metric}\n  ${rev}: ${a} ${unit} [${all(runs.old)}]\n  now: ${b} ${unit} [${all(runs.now)}]${a > 0 && b > 0 ? `  → ${(b / a).toFixed(2)}× of ${rev}` : ""}\n`,
      );
    }
  } finally {
    git("worktree", "remove", "--force", old);
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
