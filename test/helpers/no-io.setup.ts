import childProcess from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";

/**
 * Setup of the unit lane (vitest.unit.config.ts): a unit test starts no
 * server, opens no socket and spawns no process. Each of those throws here,
 * naming the way out, so the lane stays fast and a test that grows I/O is
 * moved to the full suite instead of slowing the lane down unnoticed.
 */
function refuse(what: string) {
  return () => {
    throw new Error(
      `a unit test ${what}; take its file off the unit list in vitest.unit.config.ts (npm test runs it)`,
    );
  };
}

net.Server.prototype.listen = refuse("listens on a port");
net.Socket.prototype.connect = refuse("opens a socket");
for (const name of [
  "spawn",
  "spawnSync",
  "exec",
  "execSync",
  "execFile",
  "execFileSync",
  "fork",
] as const) {
  Object.assign(childProcess, { [name]: refuse("starts a process") });
}
// ESM named imports of node:child_process see the replaced functions too.
syncBuiltinESMExports();
