import { Writable } from "node:stream";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { startBroker } from "../../src/broker.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { createEmulator } from "../../src/emulator/index.js";
import { createLogger } from "../../src/shared/logger.js";

const GOOD = { appid: "wx00000000000000g1", secret: "good-secret-1f2e3d4c5b6a" };
const BAD = { appid: "wx00000000000000b1", secret: "stale-secret-9a8b7c6d5e4f" };

describe("secrets and tokens never leak", () => {
  it("into log lines (at trace level), error messages or responses other than the token itself", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: "trace", destination: sink });
    const emulator = createEmulator({
      apps: [GOOD, { ...BAD, secret: "the-real-secret-000000" }],
      logger,
    });
    const { url } = await emulator.listen(0, "127.0.0.1");
    const config = parseConfig(
      {
        listen: { grpc: "127.0.0.1:0", connect: "127.0.0.1:0" },
        upstream: { baseUrl: url },
        apps: [
          { id: "good", appid: GOOD.appid, secret: { env: "G" } },
          { id: "bad", appid: BAD.appid, secret: { env: "B" } },
        ],
      },
      { env: { G: GOOD.secret, B: BAD.secret }, readFile: () => "" },
    );
    const broker = await startBroker(config, { logger });
    const client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: broker.connect.url, httpVersion: "1.1" }),
    );
    const issued: string[] = [];
    const messages: string[] = [];
    try {
      for (const kind of [
        TokenKind.ACCESS_TOKEN,
        TokenKind.JSAPI_TICKET,
        TokenKind.WX_CARD_TICKET,
      ]) {
        issued.push((await client.getToken({ appId: "good", kind })).token?.value ?? "");
      }
      const inv = await client.invalidateToken({
        appId: "good",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: issued[0] ?? "",
        errcode: 40001,
      });
      issued.push(inv.token?.value ?? "");
      // Failures: wrong secret, upstream errcode on a ticket fetch, a report of a foreign value.
      messages.push(
        await client.getToken({ appId: "bad", kind: TokenKind.ACCESS_TOKEN }).then(
          () => "",
          (e) => ConnectError.from(e).message,
        ),
      );
      await client.invalidateToken({
        appId: "good",
        kind: TokenKind.ACCESS_TOKEN,
        rejectedValue: "13_someone-elses-token-value",
        errcode: 40001,
      });
      emulator.control.injectFault({
        endpoint: "*",
        action: { type: "errcode", errcode: 40001 },
        times: 3,
      });
      messages.push(
        await client.getToken({ appId: "good", kind: TokenKind.JSAPI_TICKET }).then(
          () => "",
          (e) => ConnectError.from(e).message,
        ),
      );
    } finally {
      await broker.close();
      await emulator.close();
    }
    expect(issued.every((v) => v.length > 60)).toBe(true);
    expect(messages.join("\n")).toMatch(/40125/);
    expect(lines.length).toBeGreaterThan(10);
    const haystack = lines.join("") + messages.join("\n");
    for (const secret of [GOOD.secret, BAD.secret, "the-real-secret-000000"])
      expect(haystack).not.toContain(secret);
    for (const value of issued) expect(haystack).not.toContain(value);
    expect(haystack).not.toContain("someone-elses-token-value");
  });
});
