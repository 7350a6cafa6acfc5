import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  InvalidateOutcome,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";
import { recordLeakCandidate, recordOutbound } from "../helpers/leak-recorder.js";

/**
 * OpenTelemetry traces against an in-process OTLP/HTTP collector: a GetToken
 * continues the caller's trace, and the refresh it causes shows its lock
 * wait, its WeChat call (endpoint, errcode) and its store write, so an
 * operator can see why a call was slow. No span carries a secret or a token.
 */

const SHOP = { id: "shop", appid: "wx000000000000t4ce", secret: "shop-appsecret-traced-00000001" };
const COLLECTOR_KEY = "otel-collector-api-key-000000001";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: OtlpValue }>;
  status?: { code?: number };
}

interface Collector {
  url: string;
  spans: OtlpSpan[];
  headers: IncomingMessage["headers"][];
  close(): Promise<void>;
}

async function startCollector(): Promise<Collector> {
  const spans: OtlpSpan[] = [];
  const headers: IncomingMessage["headers"][] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      recordOutbound("otlp export", body);
      headers.push(req.headers);
      const doc = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    headers,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function attr(span: OtlpSpan | undefined, key: string): unknown {
  const v = span?.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.stringValue ?? v.boolValue;
}

let b: EmulatedBroker | undefined;
let collector: Collector | undefined;
afterEach(async () => {
  await b?.close();
  await collector?.close();
  b = collector = undefined;
});

describe("traces", () => {
  it("shows a GetToken's refresh, in the caller's trace: lock wait, WeChat call, store write", async () => {
    recordLeakCandidate("secret", COLLECTOR_KEY);
    collector = await startCollector();
    b = await startEmulatedBroker(
      {
        apps: [{ ...SHOP, type: "official_account" }],
        config: {
          tracing: {
            endpoint: collector.url,
            headers: { "x-api-key": { env: "OTEL_KEY" } },
            exportIntervalSeconds: 0.1,
          },
        },
        configEnvironment: { env: { OTEL_KEY: COLLECTOR_KEY } },
      },
      { logger: silentLogger(), audit: silentLogger() },
    );
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
    const tokens = createClient(TokenService, transport);
    const first = await tokens.getToken(
      { appId: "shop", kind: TokenKind.ACCESS_TOKEN },
      { headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } },
    );
    const value = first.token?.value ?? "";
    // The AppSecret is reset in WeChat's console; a client reports its token rejected.
    b.emulator.control.resetSecret(SHOP.appid, "shop-appsecret-reset-000000002");
    recordLeakCandidate("secret", "shop-appsecret-reset-000000002");
    const report = await tokens
      .invalidateToken({
        appId: "shop",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: value,
        errcode: 40001,
      })
      .catch((err: unknown) => err);
    expect(report).not.toMatchObject({ outcome: InvalidateOutcome.REFRESHED });

    // Closing flushes the exporter.
    await b.close();
    b = undefined;
    const { spans } = collector;
    const byName = (name: string) => spans.filter((s) => s.name === name);

    const server = byName("tokenbroker.v1.TokenService/GetToken")[0];
    expect(server).toMatchObject({ traceId: TRACE_ID, parentSpanId: CALLER_SPAN, kind: 2 });
    expect(attr(server, "rpc.grpc.status")).toBe("ok");
    const inTrace = spans.filter((s) => s.traceId === TRACE_ID);
    const child = (parent: OtlpSpan | undefined, name: string) =>
      inTrace.find((s) => s.name === name && s.parentSpanId === parent?.spanId);
    const refresh = child(server, "refresh access_token");
    expect(attr(refresh, "broker.app_id")).toBe("shop");
    expect(attr(refresh, "broker.version")).toBe(1);
    const lock = child(refresh, "refresh lock");
    expect(attr(lock, "broker.lock_acquired")).toBe(true);
    const call = child(refresh, "wechat /cgi-bin/token");
    expect(call?.kind).toBe(3); // CLIENT
    expect(attr(call, "wechat.endpoint")).toBe("/cgi-bin/token");
    const write = child(refresh, "store write");
    expect(attr(write, "broker.written")).toBe(true);
    expect(attr(write, "broker.version")).toBe(1);

    // The report's refresh failed at WeChat: its call names the errcode.
    const failed = spans.find(
      (s) => s.name === "wechat /cgi-bin/token" && attr(s, "wechat.errcode") === 40125,
    );
    expect(failed?.status?.code).toBe(2); // ERROR
    expect(attr(failed, "wechat.outcome")).toBe("40125");
    const invalidate = byName("tokenbroker.v1.TokenService/InvalidateToken")[0];
    expect(invalidate?.traceId).not.toBe(TRACE_ID);

    // The collector got the configured header; no span holds a token or a secret.
    expect(collector.headers.every((h) => h["x-api-key"] === COLLECTOR_KEY)).toBe(true);
    const exported = JSON.stringify(spans);
    expect(exported).not.toContain(value);
    expect(exported).not.toContain(SHOP.secret);
    expect(exported).not.toContain(COLLECTOR_KEY);
  });
});
