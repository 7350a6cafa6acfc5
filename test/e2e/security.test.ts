import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

const SHOP = { id: "shop", appid: "wx00000000000000s1", secret: "shop-secret-000000000" };
const BILLING = { id: "billing", appid: "wx00000000000000b1", secret: "billing-secret-000000" };
const SHOP_KEY = "shop-key-4f1e9c0d2b7a";
const OPS_KEY = "ops-key-77aa01bc9d";

let h: BrokerHarness;
beforeAll(async () => {
  h = await startBrokerHarness([SHOP, BILLING], 1000, {
    config: {
      security: {
        clients: [
          {
            id: "shop-service",
            apiKeySha256: hashApiKey(SHOP_KEY),
            apps: ["shop"],
            permissions: ["get", "watch", "invalidate"],
            ratePerSecond: 1,
            burst: 3,
          },
          { id: "ops", apiKeySha256: hashApiKey(OPS_KEY), apps: ["*"], permissions: ["admin"] },
        ],
      },
    },
  });
});
afterAll(async () => {
  await h.close();
});

type Outcome = { code: number; message: string } | "ok";

const viaGrpc = async (key: string | undefined, appId: string): Promise<Outcome> => {
  const c = createGrpcJsClient(TokenService, h.grpcAddress);
  try {
    await c.getToken(
      { appId, kind: TokenKind.ACCESS_TOKEN },
      key ? { metadata: { authorization: `Bearer ${key}` } } : {},
    );
    return "ok";
  } catch (e) {
    return { code: (e as { code: number }).code, message: (e as { details: string }).details };
  } finally {
    c.close();
  }
};

const viaConnect = async (key: string | undefined, appId: string): Promise<Outcome> => {
  const c = createClient(
    TokenService,
    createConnectTransport({ baseUrl: h.broker.connect.url, httpVersion: "1.1" }),
  );
  try {
    await c.getToken(
      { appId, kind: TokenKind.ACCESS_TOKEN },
      key ? { headers: { authorization: `Bearer ${key}` } } : {},
    );
    return "ok";
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, message: err.rawMessage };
  }
};

describe.each([
  ["gRPC (grpc-js)", viaGrpc],
  ["Connect (HTTP/1.1 JSON)", viaConnect],
])("client identity and ACL over %s", (_name, call) => {
  it("refuses a caller without credentials with UNAUTHENTICATED", async () => {
    expect(await call(undefined, "shop")).toEqual({
      code: Code.Unauthenticated,
      message:
        "this broker requires authentication: send authorization: Bearer <api key> or a client certificate",
    });
  });

  it("refuses an unknown key with UNAUTHENTICATED, without echoing it", async () => {
    const r = await call("not-a-real-key-000", "shop");
    expect(r).toEqual({
      code: Code.Unauthenticated,
      message: "unknown API key: no client of this broker has it",
    });
  });

  it("refuses app B to a client of app A with PERMISSION_DENIED", async () => {
    const r = await call(SHOP_KEY, "billing");
    expect(r).toMatchObject({ code: Code.PermissionDenied });
    expect((r as { message: string }).message).toMatch(
      /client 'shop-service' does not have 'get' permission for app 'billing'/,
    );
  });

  it("gives the token to the right key", async () => {
    expect(await call(SHOP_KEY, "shop")).toBe("ok");
  });
});

describe("limits and admin permission", () => {
  it("rate-limits a client with RESOURCE_EXHAUSTED saying when to retry", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => viaGrpc(SHOP_KEY, "shop")));
    const limited = results.filter((r) => r !== "ok");
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ code: Code.ResourceExhausted });
    expect((limited[0] as { message: string }).message).toMatch(
      /rate limit of 1\/s exceeded for client 'shop-service'; retry after \d+ ms/,
    );
  });

  it("lets only an admin client use AdminService", async () => {
    const admin = createGrpcJsClient(AdminService, h.grpcAddress);
    const denied = await admin
      .getStatus({ appId: "shop" }, { metadata: { authorization: `Bearer ${SHOP_KEY}` } })
      .catch((e: unknown) => e);
    expect((denied as { code: number }).code).toBe(Code.PermissionDenied);
    const status = await admin.getStatus({}, { metadata: { authorization: `Bearer ${OPS_KEY}` } });
    expect(status.quotas.length).toBeGreaterThan(0);
    admin.close();
  });
});

describe("address allowlist and X-Forwarded-For", () => {
  async function withBroker(
    security: Record<string, unknown>,
    run: (h2: BrokerHarness) => Promise<void>,
  ) {
    const h2 = await startBrokerHarness([SHOP], 1000, {
      config: {
        security: {
          clients: [
            {
              id: "shop-service",
              apiKeySha256: hashApiKey(SHOP_KEY),
              apps: ["shop"],
              permissions: ["get"],
            },
          ],
          ...security,
        },
      },
    });
    try {
      await run(h2);
    } finally {
      await h2.close();
    }
  }
  const get = (h2: BrokerHarness, forwardedFor?: string) =>
    createClient(
      TokenService,
      createConnectTransport({ baseUrl: h2.broker.connect.url, httpVersion: "1.1" }),
    )
      .getToken(
        { appId: "shop", kind: TokenKind.ACCESS_TOKEN },
        {
          headers: {
            authorization: `Bearer ${SHOP_KEY}`,
            ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}),
          },
        },
      )
      .then(
        () => "ok" as const,
        (e: unknown) => ConnectError.from(e),
      );

  it("refuses a peer outside the allowlist at accept, forged X-Forwarded-For or not", async () => {
    await withBroker({ allowCidrs: ["10.0.0.0/8"] }, async (h2) => {
      // The connection is closed before any request is read: no status, a transport error.
      for (const forged of [undefined, "10.1.2.3"]) {
        const refused = await get(h2, forged);
        expect(refused).toBeInstanceOf(ConnectError);
        expect([Code.Unavailable, Code.Internal]).toContain((refused as ConnectError).code);
      }
    });
  });

  it("honours X-Forwarded-For from a trusted proxy", async () => {
    await withBroker(
      { allowCidrs: ["10.0.0.0/8"], trustedProxies: ["127.0.0.1/32"] },
      async (h2) => {
        expect(await get(h2, "10.1.2.3")).toBe("ok");
        expect(await get(h2, "192.168.9.9")).toMatchObject({ code: Code.PermissionDenied });
      },
    );
  });
});
