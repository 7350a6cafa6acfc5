import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { hashApiKey } from "../../src/security/index.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";
import { createTestPki, type IssuedCert, type TestCa, type TestPki } from "../helpers/certs.js";
import { createGrpcJsClient } from "../helpers/grpc-js-client.js";

const SHOP = { id: "shop", appid: "wx00000000000000s1", secret: "shop-secret-000000000" };
const BILLING = { id: "billing", appid: "wx00000000000000b1", secret: "billing-secret-000000" };
const SHOP_KEY = "shop-key-over-tls-91c2";

let pki: TestPki;
let ca: TestCa;
let shopCert: IssuedCert;
let strangerCert: IssuedCert;
let h: BrokerHarness;

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa("broker-test-ca");
  const server = await ca.serverCert();
  shopCert = await ca.clientCert("shop.internal");
  strangerCert = await ca.clientCert("stranger.internal");
  h = await startBrokerHarness([SHOP, BILLING], 1000, {
    config: {
      security: {
        tls: { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: ca.certFile },
        clients: [
          {
            id: "shop-by-key",
            apiKeySha256: hashApiKey(SHOP_KEY),
            apps: ["shop"],
            permissions: ["get"],
          },
          {
            id: "shop-by-cert",
            tlsIdentity: "shop.internal",
            apps: ["shop"],
            permissions: ["get"],
          },
        ],
      },
    },
  });
});
afterAll(async () => {
  await h.close();
  await pki.cleanup();
});

type Who = { key?: string; cert?: IssuedCert };
type Outcome = "ok" | { code: number; message: string };

function grpcJs(who: Who) {
  const caPem = Buffer.from(ca.cert);
  const creds = who.cert
    ? credentials.createSsl(caPem, Buffer.from(who.cert.key), Buffer.from(who.cert.cert))
    : credentials.createSsl(caPem);
  return createGrpcJsClient(TokenService, `127.0.0.1:${h.broker.grpc.port}`, {}, creds);
}

const callers: Record<string, (who: Who, appId: string) => Promise<Outcome>> = {
  "gRPC over TLS (grpc-js)": async (who, appId) => {
    const c = grpcJs(who);
    try {
      await c.getToken(
        { appId, kind: TokenKind.ACCESS_TOKEN },
        who.key ? { metadata: { authorization: `Bearer ${who.key}` } } : {},
      );
      return "ok";
    } catch (e) {
      return { code: (e as { code: number }).code, message: (e as { details: string }).details };
    } finally {
      c.close();
    }
  },
  "Connect over TLS (HTTP/1.1)": async (who, appId) => {
    const nodeOptions = {
      ca: readFileSync(ca.certFile),
      ...(who.cert ? { cert: who.cert.cert, key: who.cert.key } : {}),
    };
    const c = createClient(
      TokenService,
      createConnectTransport({ baseUrl: h.broker.connect.url, httpVersion: "1.1", nodeOptions }),
    );
    try {
      await c.getToken(
        { appId, kind: TokenKind.ACCESS_TOKEN },
        who.key ? { headers: { authorization: `Bearer ${who.key}` } } : {},
      );
      return "ok";
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: err.code, message: err.rawMessage };
    }
  },
  "gRPC over TLS on the Connect port (connect-node, HTTP/2)": async (who, appId) => {
    const nodeOptions = {
      ca: readFileSync(ca.certFile),
      ...(who.cert ? { cert: who.cert.cert, key: who.cert.key } : {}),
    };
    const c = createClient(
      TokenService,
      createGrpcTransport({ baseUrl: h.broker.connect.url, nodeOptions }),
    );
    try {
      await c.getToken(
        { appId, kind: TokenKind.ACCESS_TOKEN },
        who.key ? { headers: { authorization: `Bearer ${who.key}` } } : {},
      );
      return "ok";
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: err.code, message: err.rawMessage };
    }
  },
};

describe.each(Object.keys(callers))("%s", (name) => {
  const call = (who: Who, appId: string) =>
    (callers[name] as (w: Who, a: string) => Promise<Outcome>)(who, appId);

  it("serves over https URLs", () => {
    expect(h.broker.grpc.url).toMatch(/^https:/);
    expect(h.broker.connect.url).toMatch(/^https:/);
  });

  it("refuses a caller with neither key nor client certificate: UNAUTHENTICATED", async () => {
    expect(await call({}, "shop")).toMatchObject({ code: Code.Unauthenticated });
  });

  it("API key over TLS: the token for its app, PERMISSION_DENIED for another", async () => {
    expect(await call({ key: SHOP_KEY }, "shop")).toBe("ok");
    expect(await call({ key: SHOP_KEY }, "billing")).toMatchObject({ code: Code.PermissionDenied });
  });

  it("mTLS: the client certificate's CN identifies the client", async () => {
    expect(await call({ cert: shopCert }, "shop")).toBe("ok");
    const other = await call({ cert: shopCert }, "billing");
    expect(other).toMatchObject({ code: Code.PermissionDenied });
    expect((other as { message: string }).message).toMatch(/client 'shop-by-cert'/);
  });

  it("mTLS: a verified certificate of an unknown client is UNAUTHENTICATED", async () => {
    const r = await call({ cert: strangerCert }, "shop");
    expect(r).toMatchObject({ code: Code.Unauthenticated });
    expect((r as { message: string }).message).toMatch(
      /'stranger.internal' is not a configured client/,
    );
  });
});
