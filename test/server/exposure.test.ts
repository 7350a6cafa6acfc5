import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  HealthStatus,
  healthRegistration,
  peerKey,
  reflectionEnabled,
} from "../../src/server/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

/** Issue 9 item 2: what health and reflection, which need no credentials, expose. */

type WatchImpl = (req: { service: string }, ctx: HandlerContext) => AsyncIterable<unknown>;

describe("Health/Watch limits", () => {
  const opened: Array<{ it: AsyncIterator<unknown>; ac: AbortController }> = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) {
      o.ac.abort(new Error("test over"));
      await o.it.return?.().catch(() => {});
    }
  });

  /** Opens one watch from `address`; resolves once its first status arrived, or rejects with the refusal. */
  async function watchFrom(watch: WatchImpl, address: string) {
    const ac = new AbortController();
    const ctx = {
      signal: ac.signal,
      values: createContextValues().set(peerKey, { address, port: 1 }),
    } as unknown as HandlerContext;
    const it = watch({ service: "" }, ctx)[Symbol.asyncIterator]();
    const entry = { it, ac };
    await it.next();
    opened.push(entry);
    return entry;
  }

  it("caps watches per peer and in all with RESOURCE_EXHAUSTED, and frees a slot when a watch ends", async () => {
    const reg = healthRegistration(new HealthStatus(), { maxWatches: 3, maxWatchesPerPeer: 2 });
    const watch = (reg.impl.watch as unknown as WatchImpl).bind(reg.impl);
    await watchFrom(watch, "10.0.0.1");
    const second = await watchFrom(watch, "10.0.0.1");
    const perPeer = await watchFrom(watch, "10.0.0.1").catch((e: unknown) => e);
    expect(perPeer).toBeInstanceOf(ConnectError);
    expect(perPeer).toMatchObject({ code: Code.ResourceExhausted });
    expect((perPeer as ConnectError).rawMessage).toMatch(/2 Health\/Watch streams .* 10\.0\.0\.1/);
    await watchFrom(watch, "10.0.0.2");
    const global = await watchFrom(watch, "10.0.0.3").catch((e: unknown) => e);
    expect(global).toMatchObject({ code: Code.ResourceExhausted });
    // A watch that ends gives its slot back.
    second.ac.abort(new Error("client left"));
    await second.it.next().catch(() => {});
    await expect(watchFrom(watch, "10.0.0.3")).resolves.toBeDefined();
  });
});

describe("reflection exposure", () => {
  it("auto serves reflection only when every listener is loopback", () => {
    expect(reflectionEnabled("auto", ["127.0.0.1", "::1"])).toBe(true);
    expect(reflectionEnabled("auto", ["127.0.0.1", "0.0.0.0"])).toBe(false);
    expect(reflectionEnabled("auto", ["10.0.0.5", "10.0.0.5"])).toBe(false);
    expect(reflectionEnabled("on", ["0.0.0.0"])).toBe(true);
    expect(reflectionEnabled("off", ["127.0.0.1"])).toBe(false);
  });

  let harness: BrokerHarness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  const listServices = async (h: BrokerHarness) => {
    const client = createGrpcJsClient(ServerReflection, h.grpcAddress);
    try {
      const names: string[] = [];
      for await (const res of client.serverReflectionInfo([
        { messageRequest: { case: "listServices", value: "" } },
      ])) {
        if (res.messageResponse.case === "listServicesResponse") {
          names.push(...res.messageResponse.value.service.map((s) => s.name));
        }
      }
      return names;
    } finally {
      client.close();
    }
  };

  it.each([
    ["auto", true],
    ["off", false],
  ] as const)("a broker on loopback with reflection: %s serves it: %s", async (mode, served) => {
    harness = await startBrokerHarness(
      [{ id: "demo", appid: "wx0000000000refl1", secret: "refl-secret-0123456789" }],
      500,
      { config: { listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0", reflection: mode } } },
    );
    const result = await listServices(harness).catch((e: unknown) => String(e));
    if (served) expect(result).toContain("tokenbroker.v1.TokenService");
    else expect(result).toMatch(/UNIMPLEMENTED/);
  });
});
