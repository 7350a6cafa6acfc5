import { describe, expect, it } from "vitest";
import { ConfigErrors } from "../../src/config/config.js";
import { configChanges } from "../../src/config/config-changes.js";
import { parseConfig } from "../../src/config/parse-config.js";

const env = { A_SECRET: "secret-of-a-0001", B_SECRET: "secret-of-b-0002", C_SECRET: "secret-c-3" };

function config(
  apps: Record<string, unknown>[],
  rest: Record<string, unknown> = {},
  vars: Record<string, string> = env,
) {
  return parseConfig({ ...rest, apps }, { env: vars, readFile: () => "" });
}

const A = { id: "a", appid: "wx000000000000000a", secret: { env: "A_SECRET" } };
const B = { id: "b", appid: "wx000000000000000b", secret: { env: "B_SECRET" } };
const C = { id: "c", appid: "wx000000000000000c", secret: { env: "C_SECRET" } };

describe("configChanges (what a reload applies)", () => {
  it("adds, removes and changes apps; an unchanged app keeps its running object", () => {
    const running = config([A, B]);
    const next = config([{ ...A }, { ...C, prefetch: false }], {}, { ...env, B_SECRET: "x" });
    const changes = configChanges(running, next);
    expect(changes).toMatchObject({ added: ["c"], removed: ["b"], changed: [], restartNeeded: [] });
    expect(changes.apps[0]).toBe(running.apps[0]);
    expect(changes.apps[1]).toBe(next.apps[1]);
  });

  it("names the keys of a changed app, a secret compared by value and never shown", () => {
    const running = config([A, B]);
    const next = config(
      [A, { ...B, tokenMode: "stable", kinds: ["access_token"] }],
      {},
      {
        ...env,
        A_SECRET: "reset-in-the-console-01",
      },
    );
    const changes = configChanges(running, next);
    expect(changes.changed).toEqual([
      { app: "a", keys: ["secret"] },
      { app: "b", keys: ["tokenMode", "kinds"] },
    ]);
    expect(changes.apps).toEqual(next.apps);
    expect(JSON.stringify(changes.changed)).not.toContain("reset-in-the-console");
  });

  it("reports the settings only a restart applies, by key", () => {
    const running = config([A], { listen: { grpc: "127.0.0.1:50051" } });
    const next = config([A], {
      listen: { grpc: "127.0.0.1:50052" },
      store: { type: "redis", url: "redis://127.0.0.1:6379" },
      shutdown: { graceMs: 1234 },
    });
    const { restartNeeded } = configChanges(running, next);
    expect(restartNeeded).toEqual(
      expect.arrayContaining(["listen.grpc.port", "store.type", "shutdown.graceMs"]),
    );
    expect(restartNeeded.some((k) => k.startsWith("apps"))).toBe(false);
  });

  it("refuses to move an app id to another WeChat appid, naming the key", () => {
    const running = config([A, B]);
    const next = config([A, { ...B, appid: "wx00000000000000bb" }]);
    let thrown: unknown;
    try {
      configChanges(running, next);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigErrors);
    expect((thrown as ConfigErrors).key).toBe("apps[1].appid");
    expect((thrown as ConfigErrors).message).toMatch(/give the new account a new app id/i);
  });
});
