/**
 * A/B of this working tree against an earlier revision, on the same machine
 * in the same session: the two run alternately (A, B, A, B, …), so a noisy
 * neighbour or a warm CPU hurts both alike, and each metric is reported as
 * the median over the rounds with the ratio of the two medians. Usage:
 *
 *   npx tsx bench/against.ts <revision> [--vs <revision>] [--only fanout] [--rounds 3]
 *
 * Without `--vs` the second side is this working tree; with it, another
 * revision in a worktree of its own.
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
type Rows = Map<string, { value: number; unit: string; baseline?: number }>;

export function parseRows(markdown: string): Rows {
  const rows: Rows = new Map();
  for (const line of markdown.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // | metric | value | baseline | ratio | goal | met |
    if (cells.length < 4) continue;
    const [, metric, value, baseline] = cells;
    const m = /^(-?[\d,.]+)\s*(.*)$/.exec(value ?? "");
    if (!metric || !m?.[1]) continue;
    const b = /^(-?[\d,.]+)/.exec(baseline ?? "")?.[1];
    rows.set(metric, {
      value: Number(m[1].replace(/,/g, "")),
      unit: m[2] ?? "",
      ...(b === undefined ? {} : { baseline: Number(b.replace(/,/g, "")) }),
    });
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
      "usage: npx tsx bench/against.ts <revision> [--vs <revision>] [--only fanout] [--rounds 3]\n",
    );
    process.exit(2);
  }
  const vs = argValue(args, "--vs");
  const only = argValue(args, "--only") ?? "fanout";
  const rounds = Number(argValue(args, "--rounds") ?? "3");
  const git = (...a: string[]) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
  const commitOf = (r: string) => git("rev-parse", "--verify", `${r}^{commit}`);
  const here = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson;
  for (const r of vs === undefined ? [rev] : [rev, vs]) {
    const missing = missingDependencies(
      JSON.parse(git("show", `${commitOf(r)}:package.json`)) as PackageJson,
      here,
    );
    if (missing.length > 0) {
      process.stderr.write(
        `against: ${r} needs dependencies this tree does not have (${missing.join(", ")}); benchmark it from a clone of its own\n`,
      );
      process.exit(2);
    }
  }
  const scratch = mkdtempSync(join(tmpdir(), "bench-against-"));
  const trees: string[] = [];
  // A revision in a worktree of its own; the working tree itself unless --vs names one
  // (others' uncommitted edits there can break or skew a run).
  const checkout = (r: string, name: string) => {
    const dir = join(scratch, name);
    git("worktree", "add", "--detach", "--quiet", dir, commitOf(r));
    trees.push(dir);
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    return dir;
  };
  try {
    const sides = [
      { name: rev, dir: checkout(rev, "a"), runs: [] as Rows[] },
      {
        name: vs ?? "working tree",
        dir: vs === undefined ? ROOT : checkout(vs, "b"),
        runs: [] as Rows[],
      },
    ];
    for (let i = 1; i <= rounds; i++) {
      for (const side of sides) {
        process.stderr.write(`against: round ${i}/${rounds}: ${side.name}\n`);
        try {
          side.runs.push(runBench(side.dir, only, join(scratch, `${side.runs.length}-${i}.md`)));
        } catch (err) {
          // One failed run (a compile error in a tree being edited, a flaky start) costs its round only.
          process.stderr.write(`against: ${side.name}: ${(err as Error).message}; round skipped\n`);
        }
      }
    }
    const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
    const metrics = [...(b.runs[0]?.keys() ?? [])].filter((m) => a.runs[0]?.has(m));
    process.stdout.write(
      `\n${only}: ${b.name} against ${rev} (${commitOf(rev).slice(0, 7)}), median of ` +
        `${a.runs.length} and ${b.runs.length} alternating runs\n\n`,
    );
    for (const metric of metrics) {
      const of = (set: Rows[]) => median(set.map((r) => r.get(metric)?.value ?? Number.NaN));
      const unit = b.runs[0]?.get(metric)?.unit ?? "";
      const x = of(a.runs);
      const y = of(b.runs);
      const all = (set: Rows[]) => set.map((r) => r.get(metric)?.value).join(", ");
      process.stdout.write(
        `${metric}\n  ${a.name}: ${x} ${unit} [${all(a.runs)}]\n  ${b.name}: ${y} ${unit} [${all(b.runs)}]` +
          `${x > 0 && y > 0 ? `  → ${(y / x).toFixed(2)}× of ${rev}` : ""}\n`,
      );
      // Each run's ratio to the baseline measured in the same run: steadier than
      // absolute figures when the machine's load changes between runs.
      const ratios = (set: Rows[]) =>
        set.flatMap((r) => {
          const row = r.get(metric);
          return row?.baseline ? [row.value / row.baseline] : [];
        });
      const ra = ratios(a.runs);
      const rb = ratios(b.runs);
      if (ra.length > 0 && rb.length > 0) {
        const fmt = (xs: number[]) => xs.map((v) => v.toFixed(2)).join(", ");
        process.stdout.write(
          `  ratio to its same-run baseline: ${a.name} ${median(ra).toFixed(2)}× [${fmt(ra)}], ` +
            `${b.name} ${median(rb).toFixed(2)}× [${fmt(rb)}]\n`,
        );
      }
    }
  } finally {
    for (const dir of trees) git("worktree", "remove", "--force", dir);
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
