#!/usr/bin/env node
// Which code runs: an installed package (production dependencies only, as in
// the container image or a packed tarball) runs the compiled JavaScript that
// `npm run build` wrote into dist/; a development checkout (the sources and
// tsx, a development dependency, both present) runs the TypeScript sources,
// so what runs is what was last edited, never a stale build.
// TOKEN_BROKER_RUNTIME=compiled or =sources chooses explicitly.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/src/cli/main.js", import.meta.url);
const sources = new URL("../src/cli/main.ts", import.meta.url);

function hasTsx() {
  try {
    import.meta.resolve("tsx/esm/api");
    return true;
  } catch {
    return false;
  }
}

const choice = process.env.TOKEN_BROKER_RUNTIME;
if (choice !== undefined && choice !== "" && choice !== "compiled" && choice !== "sources") {
  process.stderr.write(
    `token-broker: TOKEN_BROKER_RUNTIME is 'compiled' or 'sources', not '${choice}'\n`,
  );
  process.exit(2);
}
const fromSources =
  choice === "sources" || (choice !== "compiled" && existsSync(sources) && hasTsx());
if (fromSources) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    "token-broker: no compiled build (dist/src/cli/main.js): run `npm run build`, or `npm ci` to run the sources through tsx\n",
  );
  process.exit(2);
}
