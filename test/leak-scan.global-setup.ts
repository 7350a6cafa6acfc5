import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { luaScripts } from "../src/store/redis/lua-loader.js";
import {
  describeLeakReport,
  LEAK_RECORD_DIR_ENV,
  scanLeakRecords,
  writePinoTapPreload,
} from "./helpers/leak-recorder.js";

/**
 * The suite-wide leak scan: "every log line and Redis key written during the
 * whole test suite is scanned for the configured secrets and for issued
 * token values: zero hits".
 *
 * Setup, in the main vitest process before any worker starts:
 * - creates a run directory and sets TOKEN_BROKER_LEAK_RECORD_DIR to it, and
 *   NODE_OPTIONS to load a pino tap (see test/helpers/leak-recorder.ts).
 *   Vitest builds each worker's environment from process.env after global
 *   setup, and child processes inherit it, so every worker and every broker,
 *   emulator or CLI a test spawns records its values and log lines;
 * - proves the pipeline works: a child process with that environment logs a
 *   recorded canary through pino, and planted Redis commands must give exactly
 *   the expected hits (the scan fails setup otherwise).
 *
 * Teardown, after every worker has exited, scans the run directory and, on
 * any hit, sets a failing exit code and throws, listing each hit by kind and
 * fingerprint, never the value. On success the run directory is deleted. A directory given in
 * TOKEN_BROKER_LEAK_RECORD_DIR is used and kept. TOKEN_BROKER_LEAK_SCAN_PLANT=1
 * plants a leak in the real run, to see the run fail.
 */

const PLANT_ENV = "TOKEN_BROKER_LEAK_SCAN_PLANT";

export default function setup(): () => void {
  const given = process.env[LEAK_RECORD_DIR_ENV];
  const dir = given || mkdtempSync(join(tmpdir(), "token-broker-leak-scan-"));
  mkdirSync(dir, { recursive: true });
  const previous = { dir: process.env[LEAK_RECORD_DIR_ENV], options: process.env.NODE_OPTIONS };
  const flag = writePinoTapPreload(dir);
  selfCheck(dir, flag);

  process.env[LEAK_RECORD_DIR_ENV] = dir;
  process.env.NODE_OPTIONS = [previous.options, flag].filter(Boolean).join(" ");
  if (process.env[PLANT_ENV] === "1") plantLeak(dir, "planted");

  return () => {
    restore("NODE_OPTIONS", previous.options);
    restore(LEAK_RECORD_DIR_ENV, previous.dir);
    const report = scanLeakRecords(dir);
    const text = describeLeakReport(report);
    if (report.hits.length > 0 || report.problems.length > 0) {
      writeFileSync(join(dir, "leak-report.txt"), `${describeLeakReport(report, Infinity)}\n`);
      // Vitest 4 only logs a teardown error ("error during close"); the exit code fails the run.
      process.exitCode = 1;
      throw new Error(
        `${text}\nSecrets or token values leaked, or were not all scanned (full report and records kept in ${dir}).`,
      );
    }
    console.log(text);
    if (!given) rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * Runs the recorders and the scanner on a canary in a scratch directory: a
 * process started with the workers' environment logs a recorded value
 * through pino, and planted MONITOR lines hold it where it leaks and where
 * the rule allows it. Anything but the expected hits fails setup.
 */
function selfCheck(dir: string, flag: string): void {
  const scratch = join(dir, "self-check");
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch);
  const canary = plantLeak(scratch, "canary");
  const pino = pathToFileURL(createRequire(import.meta.url).resolve("pino")).href;
  const child = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { pino } = await import(${JSON.stringify(pino)});
       const sink = { write() {} };
       pino({}, sink).child({ component: "canary" }).info({ note: ${JSON.stringify(canary)} }, "canary");
       pino({ level: "silent" }, sink).error(${JSON.stringify(canary)});`,
    ],
    {
      env: {
        ...process.env,
        [LEAK_RECORD_DIR_ENV]: scratch,
        NODE_OPTIONS: [process.env.NODE_OPTIONS, flag].filter(Boolean).join(" "),
      },
      encoding: "utf8",
    },
  );
  const report = scanLeakRecords(scratch);
  const got = report.hits.map((h) => `${h.source}:${h.where.replace(/^[^:]*-\d+/, "*")}`).sort();
  const expected = [
    "log:*.log:1", // the pino line written by the child (not the silent one)
    "log:*.log:1", // the planted log line
    "redis:*.monitor:1", // SET with the value in the key
    "redis:*.monitor:3", // value in the id argument of the CAS script
    "redis:*.monitor:5", // value in the channel of an update message
    "redis:*.monitor:10", // value as the owner of a code exchange's record
  ].sort();
  const ok =
    child.status === 0 &&
    report.problems.length === 0 &&
    JSON.stringify(got) === JSON.stringify(expected) &&
    report.hits.every((h) => !h.context.includes(canary));
  if (!ok)
    throw new Error(
      `leak scan self-check failed (exit ${child.status}, ${child.stderr.trim()}):\n` +
        `expected ${expected.join(", ")}\ngot      ${got.join(", ")}\n${describeLeakReport(report)}`,
    );
  rmSync(scratch, { recursive: true, force: true });
}

/**
 * Records a fresh fake token and writes it into a log line and into MONITOR
 * lines: where it leaks (a key, a script argument other than the value, a
 * channel, an exchange record's owner) and where the Redis rule allows it (the
 * credential value or state in the script and the hash, the value in the
 * update message, an exchange's outcome). Returns the value.
 */
function plantLeak(dir: string, label: string): string {
  const value = `9_${label}-${Math.random().toString(36).slice(2)}${"x".repeat(40)}`;
  const pid = `${process.pid}${label.length}`;
  writeFileSync(
    join(dir, `values-${pid}.ndjson`),
    `${JSON.stringify({ kind: "access_token", value })}\n`,
    { flag: "a" },
  );
  writeFileSync(join(dir, `logs-${pid}.log`), `{"level":"info","msg":"fetched ${value}"}\n`, {
    flag: "a",
  });
  const lua = luaScripts("credential").find((s) => s.name === "casCredential")?.lua ?? "";
  const cas = createHash("sha1").update(lua).digest("hex");
  // A code exchange's record as MONITOR quotes it (backslashes and quotes escaped).
  const exchange = (owner: string, outcome: string) =>
    `"${JSON.stringify({ state: "settled", owner, outcome })
      .replace(/\\/g, "\\\\")
      .replace(/"/g, '\\"')}"`;
  const monitor = [
    `+1.0 [0 127.0.0.1:1] "SET" "p:${value}" "1"`,
    `+1.0 [0 127.0.0.1:1] "evalsha" "${cas}" "1" "p:{a/access_token}:cred" "p:updates" "a/access_token" "0" "1" "${value}" "1" "2" "" "9"`,
    `+1.0 [0 127.0.0.1:1] "evalsha" "${cas}" "1" "p:{a/access_token}:cred" "p:updates" "${value}" "0" "1" "x" "1" "2" "" "9"`,
    `+1.0 [0 lua] "HSET" "p:{a/access_token}:cred" "value" "${value}" "version" "1"`,
    `+1.0 [0 lua] "PUBLISH" "p:${value}" "{\\"id\\":\\"a\\/access_token\\",\\"fields\\":{\\"value\\":\\"x\\"}}"`,
    `+1.0 [0 lua] "PUBLISH" "p:updates" "{\\"id\\":\\"a\\/access_token\\",\\"fields\\":{\\"value\\":\\"${value}\\"}}"`,
    // A kind's state where the store keeps it: the CAS script's state argument and the hash field.
    `+1.0 [0 127.0.0.1:1] "evalsha" "${cas}" "1" "p:{a/k/o1}:cred" "p:updates" "a/k/o1" "0" "1" "x" "1" "2" "3" "" "9" "${value}"`,
    `+1.0 [0 lua] "HSET" "p:{a/k/o1}:cred" "value" "x" "state" "${value}"`,
    // A code exchange's outcome holds the user's token where the ledger keeps it; its owner must not.
    `+1.0 [0 127.0.0.1:1] "SET" "p:oauth-exchange:AbCdEf0123456789_x" ${exchange("client-1", JSON.stringify({ ok: true, credential: { value } }))} "PX" "300000"`,
    `+1.0 [0 127.0.0.1:1] "SET" "p:oauth-exchange:AbCdEf0123456789_x" ${exchange(value, "{}")} "PX" "300000"`,
  ];
  writeFileSync(join(dir, `redis-0-${pid}-0.monitor`), `${monitor.join("\r\n")}\r\n`, {
    flag: "a",
  });
  return value;
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
