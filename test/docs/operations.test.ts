import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { USAGE } from "../../src/cli/usage.js";

/**
 * docs/operations.md (issue 14): from a fresh clone, every file, command,
 * npm script, Kubernetes object and mount path the runbook names exists, and
 * every alert the broker raises is explained there.
 */

const ROOT = join(import.meta.dirname, "../..");
const doc = readFileSync(join(ROOT, "docs/operations.md"), "utf8");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** Every file under `dir` (relative to the root), recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" }).map((f) =>
    join(dir, f),
  );
}

const manifests = filesUnder("deploy/kubernetes")
  .filter((f) => f.endsWith(".yaml"))
  .map(read)
  .join("\n");
const backticked = [...doc.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? "");
const codeLines = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
  (m[1] ?? "").replace(/\\\n\s*/g, " ").split("\n"),
);
/** Inline code and shell lines: where the runbook names things. */
const named = [...backticked, ...codeLines];

describe("docs/operations.md", () => {
  it("names only files that exist in the repository", () => {
    const paths = new Set<string>();
    for (const text of named) {
      for (const m of text.matchAll(
        /(?:^|[\s=(])((?:deploy|scripts|docs|src|test|bin|bench)\/[\w./-]+|Dockerfile|package\.json)/g,
      ))
        paths.add((m[1] ?? "").replace(/[.,:]$/, ""));
    }
    expect(paths.size).toBeGreaterThan(5);
    for (const path of paths) expect(existsSync(join(ROOT, path)), path).toBe(true);
  });

  it("uses only token-broker commands and flags the CLI has", () => {
    // The CLI, not the namespace of the same name (`-n token-broker`, `deployment/token-broker`).
    const uses = named.flatMap((text) => [
      ...text.matchAll(
        /(?:bin\/token-broker\.js|(?<![-/.\w])(?<!-n )(?<!namespace )token-broker) ([a-z-]+)((?: [a-z]+)?)([^|`]*)/g,
      ),
    ]);
    expect(uses.length).toBeGreaterThan(5);
    const usage = USAGE.replace(/\s+/g, " ");
    for (const [, command, sub, rest] of uses) {
      const group = `${command}${sub}`.trim();
      // A subcommand word (grants export) belongs to the command when the usage lists it so.
      const name = usage.includes(`token-broker ${group} `) ? group : command;
      expect(usage, `token-broker ${name}`).toContain(`token-broker ${name} `);
      for (const flag of (rest ?? "").matchAll(/ (--[a-z-]+)/g))
        expect(usage, `${flag[1]} of token-broker ${name}`).toContain(flag[1]);
    }
  });

  it("runs only npm scripts that package.json has", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> })
      .scripts;
    for (const text of named)
      for (const m of text.matchAll(/npm run ([\w:-]+)/g))
        expect(scripts, m[1]).toHaveProperty(m[1] ?? "");
  });

  it("names Kubernetes objects, paths and settings the manifests have", () => {
    const objects = new Set(doc.match(/token-broker-[a-z-]+/g));
    expect(objects.size).toBeGreaterThan(3);
    for (const name of objects) expect(manifests, name).toContain(name);
    for (const path of new Set(doc.match(/\/etc\/token-broker\/[a-z-]+/g)))
      if (!path.endsWith("/tls")) expect(manifests, path).toContain(path);
    for (const setting of [
      "maxSurge: 1",
      "maxUnavailable: 0",
      "minAvailable: 2",
      "--watch-config",
      "terminationGracePeriodSeconds: 30",
      "preStopDelayMs: 10000",
    ])
      expect(manifests, setting).toContain(setting);
    expect(read("Dockerfile")).toContain("/app/bin/token-broker.js");
  });

  it("explains every alert the broker raises", () => {
    const raised = new Set<string>();
    for (const file of filesUnder("src").filter((f) => f.endsWith(".ts"))) {
      const text = read(file);
      for (const m of text.matchAll(/alerts\.raise\(\s*\{\s*name: "([a-z_]+)"/g))
        raised.add(m[1] ?? "");
      for (const m of text.matchAll(/_ALERT = "([a-z_]+)"/g)) raised.add(m[1] ?? "");
    }
    expect(raised.size).toBeGreaterThanOrEqual(6);
    const table = new Set([...doc.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
    for (const alert of raised) expect(table, alert).toContain(alert);
  });
});
