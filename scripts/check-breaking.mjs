// Fails when proto/ changed incompatibly since the previous commit (buf's FILE
// rules), so generated clients in other languages keep working. Skipped when
// there is no previous commit to compare with (first commit, shallow clone).
import { execFileSync, spawnSync } from "node:child_process";

const base = process.env.BUF_BREAKING_AGAINST ?? "HEAD~1";
const probe = spawnSync("git", ["rev-parse", "--verify", "--quiet", `${base}^{commit}`], {
  encoding: "utf8",
});
if (probe.status !== 0) {
  console.log(`buf breaking: skipped (no ${base} to compare with)`);
  process.exit(0);
}
const hasProto = spawnSync("git", ["cat-file", "-e", `${base}:proto`]).status === 0;
if (!hasProto) {
  console.log(`buf breaking: skipped (${base} has no proto/)`);
  process.exit(0);
}
execFileSync("npx", ["buf", "breaking", "--against", `.git#ref=${base},subdir=proto`], {
  stdio: "inherit",
});
console.log(`buf breaking: no breaking changes against ${base}`);
