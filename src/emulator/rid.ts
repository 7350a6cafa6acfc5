import { randomBytes } from "node:crypto";

/**
 * A request id shaped like WeChat's `rid: 6503eca5-7bb36fec-71b15f36`. The
 * first group is the emulator's current Unix time in hex seconds (as in the
 * observed ids); the other two are random. Emulator choice.
 */
export function createRid(nowMs: number): string {
  const seconds = Math.floor(nowMs / 1000) >>> 0;
  const head = seconds.toString(16).padStart(8, "0");
  const tail = randomBytes(8).toString("hex");
  return `${head}-${tail.slice(0, 8)}-${tail.slice(8)}`;
}
