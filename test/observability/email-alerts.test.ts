import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SMTPServer } from "smtp-server";
import { afterEach, describe, expect, it } from "vitest";
import { TokenKind, TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type EmulatedBroker, startEmulatedBroker } from "../../src/emulated-broker.js";
import { silentLogger } from "../../src/shared/logger.js";
import { createTestPki, type TestPki } from "../helpers/certs.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { recordLeakCandidate, recordOutbound } from "../helpers/leak-recorder.js";
import { logSink } from "../helpers/log-sink.js";

/**
 * E-mail alerts against a real SMTP server (smtp-server) over TLS with
 * authentication: one mail when a condition starts, one when it clears,
 * none in between; the SMTP password comes from the environment, never
 * travels without TLS, and no mail carries a secret or a token.
 */

const SHOP = { id: "shop", appid: "wx00000000000e4a11", secret: "shop-appsecret-0000000000000001" };
const WRONG = "shop-appsecret-reset-in-console-02";
const SMTP_USER = "broker-alerts";
const SMTP_PASSWORD = "smtp-password-not-for-logs-0001";

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

interface TestSmtp {
  port: number;
  mails: Mail[];
  logins: Array<{ user: string; secure: boolean }>;
  close(): Promise<void>;
}

async function startSmtp(o: {
  tls?: { key: string; cert: string };
  startTls?: boolean;
}): Promise<TestSmtp> {
  const mails: Mail[] = [];
  const logins: Array<{ user: string; secure: boolean }> = [];
  const server = new SMTPServer({
    secure: o.tls !== undefined,
    ...(o.tls ? { key: o.tls.key, cert: o.tls.cert } : {}),
    hideSTARTTLS: !o.startTls,
    // Plain SMTP here has no certificate to offer: STARTTLS is hidden, so a
    // client that insists on TLS must refuse to log in.
    allowInsecureAuth: true,
    authMethods: ["PLAIN", "LOGIN"],
    logger: false,
    onAuth(auth, session, callback) {
      logins.push({ user: auth.username ?? "", secure: session.secure });
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        recordOutbound("alert mail", raw);
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    mails,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A header of a raw message, unfolded. */
function header(raw: string, name: string): string {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? "";
  const m = new RegExp(`^${name}: (.*(?:\\r?\\n[ \\t].*)*)`, "mi").exec(head);
  return (m?.[1] ?? "").replace(/\r?\n[ \t]+/g, " ");
}

let b: EmulatedBroker | undefined;
let smtp: TestSmtp | undefined;
let pki: TestPki | undefined;
afterEach(async () => {
  await b?.close();
  await smtp?.close();
  await pki?.cleanup();
  b = smtp = pki = undefined;
});

async function startBrokerWithMail(
  email: Record<string, unknown>,
  files: Record<string, string> = {},
) {
  const clock = new FakeClock();
  const log = logSink();
  b = await startEmulatedBroker(
    {
      apps: [{ ...SHOP, type: "official_account" }],
      config: { upstream: { timeoutMs: 1000 }, alerts: { email } },
      configEnvironment: {
        env: { SMTP_PASSWORD },
        readFile: (path) => {
          const content = files[path];
          if (content === undefined)
            throw Object.assign(new Error("no such file"), { code: "ENOENT" });
          return content;
        },
      },
    },
    { logger: log.logger, audit: silentLogger(), clock },
  );
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${b.broker.grpc.port}` });
  return { clock, broker: b, tokens: createClient(TokenService, transport), log };
}

describe("e-mail alerts", () => {
  it("mails once when a secret stops working and once when it works again, over TLS with the password from the environment", async () => {
    recordLeakCandidate("secret", SMTP_PASSWORD);
    recordLeakCandidate("secret", WRONG);
    pki = await createTestPki();
    const ca = await pki.createCa("smtp-ca");
    const cert = await ca.serverCert("smtp.test");
    smtp = await startSmtp({ tls: { key: cert.key, cert: cert.cert } });
    const { clock, broker, tokens } = await startBrokerWithMail(
      {
        smtp: {
          host: "127.0.0.1",
          port: smtp.port,
          secure: true,
          user: SMTP_USER,
          password: { env: "SMTP_PASSWORD" },
          caFile: "/run/secrets/smtp-ca.pem",
        },
        from: "token-broker@example.com",
        to: ["oncall@example.com", "wechat-team@example.com"],
        subjectPrefix: "[prod token-broker]",
      },
      { "/run/secrets/smtp-ca.pem": readFileSync(ca.certFile, "utf8") },
    );

    // The AppSecret is reset in WeChat's console: the broker's copy is wrong.
    broker.emulator.control.resetSecret(SHOP.appid, WRONG);
    for (let i = 0; i < 5; i++) {
      await tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN }).catch(() => {});
      await clock.advance(20_000);
    }
    // The operator puts the new secret where the broker reads it: here,
    // WeChat is given back the broker's one. The next attempt works.
    broker.emulator.control.resetSecret(SHOP.appid, SHOP.secret);
    await clock.advance(60_000);
    await tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN });

    // Closing drains every alert delivery.
    await broker.close();
    b = undefined;
    const mails = smtp.mails;
    expect(mails.map((m) => header(m.raw, "Subject"))).toEqual([
      "[prod token-broker] FIRING (critical) wechat_config_error (app shop)",
      "[prod token-broker] RESOLVED wechat_config_error (app shop)",
    ]);
    for (const m of mails) {
      expect(m.from).toBe("token-broker@example.com");
      expect(m.to).toEqual(["oncall@example.com", "wechat-team@example.com"]);
      expect(m.raw).not.toContain(SMTP_PASSWORD);
      expect(m.raw).not.toContain(WRONG);
      expect(m.raw).not.toContain(SHOP.secret);
    }
    expect(mails[0]?.raw).toContain("errcode: 40125");
    expect(smtp.logins).toEqual([
      { user: SMTP_USER, secure: true },
      { user: SMTP_USER, secure: true },
    ]);
  });

  it("never sends the password, or a mail, to a server that offers no TLS", async () => {
    smtp = await startSmtp({ startTls: false });
    const { clock, broker, tokens, log } = await startBrokerWithMail({
      smtp: {
        host: "127.0.0.1",
        port: smtp.port,
        secure: false,
        user: SMTP_USER,
        password: { env: "SMTP_PASSWORD" },
        timeoutMs: 2000,
      },
      from: "token-broker@example.com",
      to: ["oncall@example.com"],
    });
    broker.emulator.control.resetSecret(SHOP.appid, WRONG);
    await tokens.getToken({ appId: "shop", kind: TokenKind.ACCESS_TOKEN }).catch(() => {});
    await clock.advance(5_000);
    await broker.close();
    b = undefined;
    expect(smtp.logins).toEqual([]);
    expect(smtp.mails).toEqual([]);
    // It tried (the alert fired) and gave up for want of TLS: smtp-server
    // hides STARTTLS but still answers it with a certificate nobody trusts,
    // so nodemailer reports ETLS or a socket error; at most two retries.
    const attempts = log.lines().filter((l) => l.msg === "alert e-mail attempt failed");
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    expect(attempts.length).toBeLessThanOrEqual(3);
    for (const a of attempts) {
      expect([a.alert, a.state]).toEqual(["wechat_config_error", "firing"]);
      expect(["ETLS", "ESOCKET"]).toContain(a.reason);
    }
    expect(JSON.stringify(log.lines())).not.toContain(SMTP_PASSWORD);
  });

  it("rejects a config whose password is inline, or with a user but no password", async () => {
    const { parseConfig } = await import("../../src/config/parse-config.js");
    const base = { apps: [] };
    const email = (smtp: Record<string, unknown>) => ({
      ...base,
      alerts: { email: { smtp: { host: "mail", ...smtp }, from: "a@b.c", to: ["d@e.f"] } },
    });
    expect(() =>
      parseConfig(email({ user: "u", password: "inline-password" }), {
        env: {},
        readFile: () => "",
      }),
    ).toThrow(/alerts\.email\.smtp\.password.*inline secrets are not accepted/s);
    expect(() => parseConfig(email({ user: "u" }), { env: {}, readFile: () => "" })).toThrow(
      /alerts\.email\.smtp.*give both user and password/s,
    );
    expect(() =>
      parseConfig(
        { ...base, alerts: { email: { smtp: { host: "mail" }, from: "a@b.c", to: [] } } },
        {
          env: {},
          readFile: () => "",
        },
      ),
    ).toThrow(/alerts\.email\.to.*at least one address/s);
  });
});
