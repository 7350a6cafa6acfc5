import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigErrors } from "../../src/config/config.js";
import { parseConfig } from "../../src/config/parse-config.js";

/** Issue 13: the `facade` section, its defaults, and the cleartext rule for its own listener. */

const environment = { env: {}, readFile: () => "" };
const config = (yaml: string) => parseConfig(parse(yaml) ?? {}, environment);
function keysOf(yaml: string): string[] {
  try {
    config(yaml);
    return [];
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.key);
    throw err;
  }
}

describe("facade config", () => {
  it("is on by default, on the Connect port, with AppSecrets and forwarding", () => {
    expect(config("").facade).toEqual({
      enabled: true,
      appSecrets: true,
      forward: true,
      forwardTimeoutMs: 30_000,
    });
    expect(config('facade: { listen: "127.0.0.1:8090", enabled: false }').facade).toMatchObject({
      enabled: false,
      listen: { host: "127.0.0.1", port: 8090 },
    });
  });

  it("refuses a listener of its own beyond loopback without TLS, and unknown keys", () => {
    expect(keysOf('facade: { listen: "0.0.0.0:8090" }')).toEqual(["facade.listen"]);
    expect(() => config('facade: { listen: "10.0.0.5:8090" }')).toThrow(
      /AppSecrets, API keys and tokens would cross the network in cleartext/,
    );
    expect(
      keysOf('facade: { listen: "0.0.0.0:8090" }\nsecurity: { allowPlaintextNonLoopback: true }'),
    ).toEqual([]);
    expect(keysOf('facade: { listen: "0.0.0.0:8090", enabled: false }')).toEqual([]);
    expect(keysOf("facade: { forwrd: false }")).toEqual(["facade.forwrd"]);
  });
});
