import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { next, sqliteSandbox } from "./helpers.js";

const fixture = fileURLToPath(new URL("./fixtures/hold-file.ts", import.meta.url));
const sandbox = sqliteSandbox();
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

/** Starts the fixture on `path`; resolves with its first line and exit code (if it exited). */
function holder(path: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, path], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line !== undefined) resolve({ child, line });
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the holder exited (${code}) saying '${out}'`)));
  });
}

describe("one process owns the SQLite file", () => {
  it("a second broker process is refused while the first holds the file, and opens once it exits", async () => {
    const path = join(sandbox.dir(), "broker.db");
    const first = sandbox.open({ path });
    await first.store.compareAndSet({ appId: "a", kind: "access_token" }, 0, 1, next("t1"));
    const refused = await holder(path);
    expect(refused.line).toMatch(
      /^refused: the SQLite store .*broker\.db is in use by another process/,
    );
    await first.close();
    // Now another process takes it, and this one is refused in turn.
    const { child, line } = await holder(path);
    expect(line).toBe("opened");
    expect(() => sandbox.open({ path })).toThrow(/in use by another process/);
    // A holder that dies (even killed) leaves no lock behind.
    child.removeAllListeners("exit");
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const reopened = sandbox.open({ path });
    expect(await reopened.store.get({ appId: "a", kind: "access_token" })).toMatchObject({
      value: "t1",
      version: 1,
    });
  });
});
