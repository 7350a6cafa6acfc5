import { execFile } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The container image's recipe without a container engine (issue 14): the
 * Dockerfile's build stage runs scripts/image-build.sh then image-smoke.sh;
 * here both run in a clean copy of the build context (the tree less what
 * .dockerignore leaves out): npm ci, build, prune, then the compiled broker
 * starts, answers SERVING to the image's health check and exits 0 on SIGTERM.
 */

const ROOT = join(import.meta.dirname, "../..");
const execFileAsync = promisify(execFile);

/** execFile, failing with the end of both outputs (tsc and npm report on stdout). */
async function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync(file, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { message: string; stdout?: string; stderr?: string };
    const tail = (s = "") => s.split("\n").slice(-40).join("\n");
    throw new Error(`${e.message.split("\n")[0]}\n${tail(e.stdout)}\n${tail(e.stderr)}`);
  }
}
const work = mkdtempSync(join(tmpdir(), "broker-image-"));
// Readable by the unprivileged user the smoke runs the broker as, as /app is in the image.
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The .dockerignore patterns this test understands: `**\/name`, `**\/*.ext` and top-level `name`. */
function ignoreFilter(): (path: string) => boolean {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const tests = patterns.map((p) => {
    if (p.startsWith("**/*.")) return (rel: string) => rel.endsWith(p.slice(4));
    if (p.startsWith("**/")) return (rel: string) => basename(rel) === p.slice(3);
    if (/^[\w.-]+$/.test(p)) return (rel: string) => rel === p;
    throw new Error(`.dockerignore pattern '${p}' is not one this test understands`);
  });
  return (path) => {
    const rel = relative(ROOT, path);
    return rel === "" || !tests.some((t) => t(rel));
  };
}

/**
 * better-sqlite3's install asks for a prebuilt addon first (prebuild-install)
 * and compiles SQLite for minutes when none comes. An image build downloads
 * one; here the addon this tree's own install produced is offered under the
 * same name, as a local prebuild.
 */
async function localPrebuilds(): Promise<string> {
  const dir = join(work, "prebuilds");
  mkdirSync(dir);
  const addon = join(ROOT, "node_modules/better-sqlite3");
  const { version } = JSON.parse(readFileSync(join(addon, "package.json"), "utf8")) as {
    version: string;
  };
  const { modules } = process.versions;
  const name = `better-sqlite3-v${version}-node-v${modules}-${process.platform}-${process.arch}.tar.gz`;
  await run("tar", ["-czf", join(dir, name), "build/Release/better_sqlite3.node"], { cwd: addon });
  return dir;
}

describe("the container image's recipe", () => {
  it("installs, builds and prunes in a clean copy; the compiled broker serves, answers SERVING and exits 0 on SIGTERM", async () => {
    const context = join(work, "context");
    cpSync(ROOT, context, { recursive: true, filter: ignoreFilter(), verbatimSymlinks: true });
    const prebuilds = await localPrebuilds();
    const app = join(work, "app");
    // Without the leak scan's preload: the smoke runs the broker as another
    // user, who cannot read the scan's private folder (its log holds no
    // credential but the smoke's made-up AppSecret).
    const { NODE_OPTIONS: _scanPreload, ...inherited } = process.env;
    const env = {
      ...inherited,
      IMAGE_NPM_CI_FLAGS: "--prefer-offline",
      npm_config_better_sqlite3_local_prebuilds: prebuilds,
    };
    const built = await run("bash", [join(context, "scripts/image-build.sh"), app], { env });
    expect(built.stderr).toMatch(/image-build: runtime in /);
    const smoke = await run("bash", [join(context, "scripts/image-smoke.sh"), app], { env });
    expect(smoke.stderr).toMatch(/health: SERVING/);
    expect(smoke.stderr).toMatch(/SIGTERM: exit 0/);
    expect(smoke.stdout.trim()).toBe("image-smoke: ok");
  }, 360_000);

  it("the Dockerfile runs those scripts on Node 20 slim, as a non-root user under tini, with the health check", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const from = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(from.length).toBeGreaterThanOrEqual(2);
    for (const image of from) expect(image).toMatch(/^node:20-[a-z]+-slim$/);
    expect(dockerfile).toMatch(
      /^RUN bash scripts\/image-build\.sh \/app && bash scripts\/image-smoke\.sh \/app$/m,
    );
    expect(dockerfile).toMatch(/^COPY --from=build \/app \/app$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/bin\/token-broker\.js"\]$/m,
    );
    expect(dockerfile).toMatch(
      /HEALTHCHECK[^\n]*\\\n\s+CMD \["node", "\/app\/bin\/token-broker\.js", "health"/,
    );
  });
});
