// Copies the Redis scripts (every src/**/*.lua, includes too) into the build
// beside the compiled JS, so the compiled broker never reads from src/ (tsc
// copies no .lua files). Run by `npm run build` after tsc; the output folder
// is tsconfig's outDir, "dist" unless given as the first argument. A .lua file
// left in the output from an earlier build but gone from src/ is removed, so
// a renamed script is never registered twice.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const outDir = resolve(root, process.argv[2] ?? "dist");

/** Paths of the .lua files under `dir`, relative to it. */
function luaFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".lua"))
    .sort();
}

const from = join(root, "src");
const to = join(outDir, "src");
const wanted = luaFiles(from);
for (const stale of luaFiles(to).filter((file) => !wanted.includes(file))) rmSync(join(to, stale));
for (const file of wanted) {
  mkdirSync(dirname(join(to, file)), { recursive: true });
  copyFileSync(join(from, file), join(to, file));
}
console.log(`copied ${wanted.length} Lua scripts into ${to}`);
