import { describe, expect, expectTypeOf, it } from "vitest";
import { parse } from "yaml";
import { type ConfigError, ConfigErrors } from "../../src/config/config.js";
import { applyEnvOverrides } from "../../src/config/load-config.js";
import { parseConfig } from "../../src/config/parse-config.js";
import { ACCOUNT_SCHEMAS } from "../../src/config/schema/apps.js";
import { APP_TYPES, type AppConfig } from "../../src/token/app.js";

const environment = {
  env: { SHOP_SECRET: "s3cr3t-value" } as Record<string, string | undefined>,
  readFile: (p: string) => {
    if (p === "/run/secrets/mini") return "file-secret\n";
    throw Object.assign(new Error("nope"), { code: "ENOENT" });
  },
};

const MINIMAL = `
apps:
  - id: shop
    appid: wx0000000000000001
    secret: { env: SHOP_SECRET }
`;

describe("parseConfig", () => {
  it("fills defaults and resolves secrets without exposing them", () => {
    const config = parseConfig(parse(MINIMAL), environment);
    expect(config.listen.grpc).toEqual({ host: "127.0.0.1", port: 50051 });
    expect(config.listen.connect).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.upstream.baseUrl).toBe("https://api.weixin.qq.com");
    const app = config.apps[0];
    expect(app).toMatchObject({
      id: "shop",
      type: "official_account",
      tokenMode: "classic",
      prefetch: true,
    });
    expect(app?.secret.reveal()).toBe("s3cr3t-value");
    expect(JSON.stringify(config)).not.toContain("s3cr3t-value");
    expect(Object.isFrozen(config.apps)).toBe(true);
  });

  it("reads which kinds an app offers; without the key, every kind of its type", () => {
    const config = parseConfig(
      parse(`
refresh: { stableMarginSeconds: 250, jitterRatio: 0.2 }
apps:
  - { id: shop, appid: wx1, secret: { env: SHOP_SECRET }, kinds: [access_token, jsapi_ticket] }
  - { id: all, appid: wx2, secret: { env: SHOP_SECRET } }
`),
      environment,
    );
    expect(config.apps[0]?.kinds).toEqual(["access_token", "jsapi_ticket"]);
    expect(config.apps[1]?.kinds).toBeUndefined();
    expect(config.refresh.stableMarginMs).toBe(250_000);
  });

  it("reads a full document", () => {
    const config = parseConfig(
      parse(`
listen: { grpc: "[::1]:6000", connect: "0.0.0.0:6001" }
security: { allowUnauthenticatedNonLoopback: true }
upstream: { baseUrl: "http://127.0.0.1:9000/", timeoutMs: 2000 }
refresh: { marginSeconds: 300, stableMarginSeconds: 200, jitterRatio: 0 }
cors: { allowedOrigins: ["https://app.example.com"] }
log: { level: debug }
apps:
  - { id: mini, type: mini_program, appid: wx2, secret: { file: /run/secrets/mini }, tokenMode: stable, prefetch: false }
`),
      environment,
    );
    expect(config.listen.grpc).toEqual({ host: "::1", port: 6000 });
    expect(config.upstream.baseUrl).toBe("http://127.0.0.1:9000");
    expect(config.refresh.marginMs).toBe(300_000);
    expect(config.refresh.stableMarginMs).toBe(200_000);
    expect(config.apps[0]?.secret.reveal()).toBe("file-secret");
    expect(config.apps[0]?.tokenMode).toBe("stable");
  });

  it.each([
    ["unknown top-level key", "listne: {}", /config key 'listne': unknown key/],
    [
      "bad listen address",
      "listen: { grpc: 'localhost' }",
      /config key 'listen.grpc': expected host:port/,
    ],
    ["port out of range", "listen: { grpc: '127.0.0.1:70000' }", /'listen.grpc'/],
    [
      "bad URL",
      "upstream: { baseUrl: 'ftp://x' }",
      /'upstream.baseUrl': expected an http\(s\) URL/,
    ],
    [
      "stable margin ≥ 300 s",
      "refresh: { stableMarginSeconds: 300 }",
      /'refresh.stableMarginSeconds': expected a number from 1 to 299/,
    ],
    [
      "stable margin that, with its jitter, starts before the last 300 s",
      "refresh: { stableMarginSeconds: 260, jitterRatio: 0.2 }",
      /'refresh.stableMarginSeconds': with jitterRatio 0.2 a stable-token refresh could start 312 s before expiry.*at most 250 s/,
    ],
    [
      "a kind the app type does not have",
      "apps: [{ id: a, type: mini_program, appid: wx, secret: { env: SHOP_SECRET }, kinds: [access_token, jsapi_ticket] }]",
      /'apps\[0\].kinds\[1\]': a mini_program offers access_token/,
    ],
    [
      "kinds without the access token",
      "apps: [{ id: a, appid: wx, secret: { env: SHOP_SECRET }, kinds: [jsapi_ticket] }]",
      /'apps\[0\].kinds': must include access_token/,
    ],
    [
      "inline secret",
      "apps: [{ id: a, appid: wx, secret: plain }]",
      /'apps\[0\].secret': inline secrets are not accepted/,
    ],
    [
      "unset env secret",
      "apps: [{ id: a, appid: wx, secret: { env: NOPE } }]",
      /'apps\[0\].secret.env': environment variable NOPE is not set/,
    ],
    [
      "unreadable secret file",
      "apps: [{ id: a, appid: wx, secret: { file: /x } }]",
      /'apps\[0\].secret.file': cannot read \/x: ENOENT/,
    ],
    [
      "duplicate app id",
      "apps: [{ id: a, appid: wx, secret: { env: SHOP_SECRET } }, { id: a, appid: wy, secret: { env: SHOP_SECRET } }]",
      /'apps\[1\].id': duplicate/,
    ],
    [
      "bad app id",
      "apps: [{ id: 'a/b', appid: wx, secret: { env: SHOP_SECRET } }]",
      /'apps\[0\].id'/,
    ],
    [
      "unknown app type",
      "apps: [{ id: a, type: corp, appid: wx, secret: { env: SHOP_SECRET } }]",
      /'apps\[0\].type': expected one of official_account, mini_program/,
    ],
    [
      "typo in an app",
      "apps: [{ id: a, appid: wx, secret: { env: SHOP_SECRET }, tokenmode: stable }]",
      /'apps\[0\].tokenmode': unknown key/,
    ],
  ])("names the key on %s", (_name, yaml, message) => {
    expect(() => parseConfig(parse(yaml), environment)).toThrow(message);
  });

  it("reads a Redis store and checks its URL without echoing a password", () => {
    const config = parseConfig(
      parse(
        "store: { type: redis, url: 'redis-sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/main' }",
      ),
      environment,
    );
    expect(config.store).toEqual({
      type: "redis",
      url: "redis-sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/main",
      prefix: "tokenbroker",
      lockTtlMs: 30_000,
      schedulePollMs: 1000,
    });
    const bad = () =>
      parseConfig(parse("store: { type: redis, url: 'redis://:hunter2@a:1,b:2' }"), environment);
    expect(bad).toThrow(/'store.url': a standalone URL names one host/);
    expect(bad).not.toThrow(/hunter2/);
    expect(() => parseConfig(parse("store: { type: redis }"), environment)).toThrow(
      /'store.url': is required/,
    );
  });

  it("reads metrics, alert webhooks (URL from env) and quota budgets, defaults and per app", () => {
    const config = parseConfig(
      parse(`
metrics: { listen: "127.0.0.1:9464" }
alerts:
  webhooks:
    - { url: "https://hooks.example.com/x", format: generic }
    - { url: { env: SHOP_SECRET }, format: wecom }
quota:
  budgets: { /cgi-bin/token: 1500, /cgi-bin/ticket/getticket: null, clear_quota: 1 }
  apps: { shop: { /cgi-bin/token: 9000 } }
  scheduledReserve: 0.25
invalidate: { refreshBurst: 5, refreshRefillSeconds: 600 }
apps: [{ id: shop, appid: wx1, secret: { env: SHOP_SECRET } }]
`),
      { ...environment, env: { SHOP_SECRET: "https://robot.example.com/send?key=abc" } },
    );
    expect(config.metrics.listen).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(config.alerts.webhooks.map((w) => [w.url.reveal(), w.format])).toEqual([
      ["https://hooks.example.com/x", "generic"],
      ["https://robot.example.com/send?key=abc", "wecom"],
    ]);
    expect(JSON.stringify(config)).not.toContain("key=abc");
    expect(config.quota).toEqual({
      budgets: { "/cgi-bin/token": 1500, "/cgi-bin/ticket/getticket": null, clear_quota: 1 },
      apps: { shop: { "/cgi-bin/token": 9000 } },
      corpBudgets: {},
      corps: {},
      scheduledReserve: 0.25,
    });
    expect(config.invalidate).toEqual({ refreshBurst: 5, refreshRefillMs: 600_000 });
    expect(() => parseConfig(parse("quota: { scheduledReserve: 1 }"), environment)).toThrow(
      /quota.scheduledReserve/,
    );
    expect(() => parseConfig(parse("quota: { apps: { nope: {} } }"), environment)).toThrow(
      "config key 'quota.apps.nope': no app with id 'nope' is configured",
    );
    expect(() =>
      parseConfig(parse("quota: { budgets: { /cgi-bin/tokn: 5 } }"), environment),
    ).toThrow(/'quota.budgets.\/cgi-bin\/tokn': unknown key/);
    expect(() =>
      parseConfig(parse("alerts: { webhooks: [{ url: 'ftp://x' }] }"), environment),
    ).toThrow(/'alerts.webhooks\[0\].url': expected an http\(s\) URL/);
  });

  it("reads the security section: TLS, clients, CIDRs, encryption keys, audit destination", () => {
    const key = Buffer.alloc(32, 7).toString("base64");
    const config = parseConfig(
      parse(`
listen: { grpc: "0.0.0.0:50051", connect: "0.0.0.0:8080" }
security:
  tls: { certFile: /tls/crt, keyFile: /tls/key, clientCaFile: /tls/ca, requireClientCert: true }
  clients:
    - { id: orders, apiKeySha256: "${"A".repeat(64)}", apps: [shop], kinds: [access_token], permissions: [get, watch], ratePerSecond: 5 }
    - { id: ops, tlsIdentity: ops.internal, apps: ["*"], permissions: [admin] }
  allowCidrs: [10.0.0.0/8, "fd00::/8"]
  trustedProxies: [10.1.0.5/32]
  encryptionKeys: [{ id: k1, key: { env: TOKEN_KEY } }]
  acceptPlaintextUntil: "2026-12-31T12:00:00Z"
audit: { destination: /var/log/broker/audit.log }
`),
      { ...environment, env: { TOKEN_KEY: key } },
    );
    expect(config.security.tls).toEqual({
      certFile: "/tls/crt",
      keyFile: "/tls/key",
      clientCaFile: "/tls/ca",
      requireClientCert: true,
    });
    expect(config.security.clients[0]).toEqual({
      id: "orders",
      apiKeySha256: "a".repeat(64),
      apps: ["shop"],
      kinds: ["access_token"],
      permissions: ["get", "watch"],
      ratePerSecond: 5,
    });
    expect(config.security.clients[1]?.tlsIdentity).toBe("ops.internal");
    expect(config.security.encryptionKeys[0]?.key.reveal()).toBe(key);
    expect(config.security.acceptPlaintextUntil).toBe(Date.UTC(2026, 11, 31, 12, 0, 0));
    expect(JSON.stringify(config)).not.toContain(key);
    expect(config.audit.destination).toEqual({ file: "/var/log/broker/audit.log" });
  });

  it.each([
    [
      "a non-loopback listener without clients",
      "listen: { grpc: '0.0.0.0:1' }",
      /'listen.grpc': 0.0.0.0 is not a loopback address and no clients are configured/,
    ],
    [
      "a client nobody can recognise",
      "security: { clients: [{ id: x, apps: ['*'], permissions: [get] }] }",
      /'security.clients\[0\]': needs apiKeySha256 or tlsIdentity/,
    ],
    [
      "a short key hash",
      "security: { clients: [{ id: x, apiKeySha256: abc, apps: ['*'], permissions: [get] }] }",
      /'security.clients\[0\].apiKeySha256': expected 64 hex/,
    ],
    [
      "an unknown permission",
      `security: { clients: [{ id: x, tlsIdentity: a, apps: ['*'], permissions: [root] }] }`,
      /'security.clients\[0\].permissions\[0\]': expected one of get, watch, invalidate, admin/,
    ],
    [
      "a bad CIDR",
      "security: { allowCidrs: ['10.0.0.0'] }",
      /'security.allowCidrs\[0\]': expected a CIDR/,
    ],
    [
      "mTLS without a CA",
      "security: { tls: { certFile: a, keyFile: b, requireClientCert: true } }",
      /'security.tls.requireClientCert': needs clientCaFile/,
    ],
    [
      "a short encryption key",
      "security: { encryptionKeys: [{ id: k, key: { env: SHOP_SECRET } }] }",
      /'security.encryptionKeys\[0\].key': expected 32 random bytes/,
    ],
    [
      "a plaintext window that is not an ISO time",
      "security: { acceptPlaintextUntil: 'next week' }",
      /'security.acceptPlaintextUntil': expected an ISO 8601 time with its zone/,
    ],
    [
      "a plaintext window without encryption keys",
      "security: { acceptPlaintextUntil: '2026-12-31T00:00:00Z' }",
      /'security.acceptPlaintextUntil': only means something with security.encryptionKeys/,
    ],
    [
      "a relative audit file",
      "audit: { destination: audit.log }",
      /'audit.destination': expected stderr, stdout or an absolute file path/,
    ],
  ])("names the key on %s", (_name, yaml, message) => {
    expect(() => parseConfig(parse(yaml), environment)).toThrow(message);
  });

  it("allows an unauthenticated non-loopback listener only when opted in", () => {
    const config = parseConfig(
      parse("listen: { grpc: '0.0.0.0:1' }\nsecurity: { allowUnauthenticatedNonLoopback: true }"),
      environment,
    );
    expect(config.listen.grpc.host).toBe("0.0.0.0");
  });

  it("never puts a secret into an error message", () => {
    expect(() =>
      parseConfig(
        parse("apps: [{ id: a, appid: wx, secret: { env: SHOP_SECRET, file: /x } }]"),
        environment,
      ),
    ).toThrow(/exactly one of/);
  });
});

describe("parseConfig reports every problem at once", () => {
  const errorsOf = (yaml: string): ConfigError[] => {
    try {
      parseConfig(parse(yaml), environment);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigErrors);
      return [...(err as ConfigErrors).errors];
    }
    throw new Error("expected the config to be refused");
  };

  it("names every bad key of a document in one error, across sections, apps and clients", () => {
    const errors = errorsOf(`
listen: { grpc: "nope", idleTimeoutMs: 5 }
upstream: { baseUrl: "ftp://x", timeoutMz: 100 }
log: { level: loud }
store: { type: redis, url: "redis://a:1", prefix: "bad prefix!" }
audit: { destination: relative.log }
security:
  clients:
    - { id: a, permissions: [get] }
    - { id: b, apiKeySha256: "${"a".repeat(64)}", apps: ["*"], permissions: [fly] }
apps:
  - { id: one, appid: wx1, secret: { env: MISSING_VAR } }
  - { id: two, appid: wx2, secret: { env: SHOP_SECRET }, tokenMode: fast, prefetch: maybe }
unknownSection: {}
`);
    const keys = errors.map((e) => e.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        "listen.grpc",
        "listen.idleTimeoutMs",
        "upstream.baseUrl",
        "upstream.timeoutMz",
        "log.level",
        "store.prefix",
        "audit.destination",
        "security.clients[0]",
        "security.clients[1].permissions[0]",
        "apps[0].secret.env",
        "apps[1].tokenMode",
        "apps[1].prefetch",
        "unknownSection",
      ]),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("lists every problem in the message an operator reads, one line each", () => {
    const yaml = "log: { level: loud }\nshutdown: { graceMs: -1 }\n";
    expect(() => parseConfig(parse(yaml), environment)).toThrow(
      /2 problems:\n {2}- config key 'log.level': .*\n {2}- config key 'shutdown.graceMs'/,
    );
  });

  it("still reports a single problem as before, and cross-checks once the keys are valid", () => {
    const one = errorsOf("log: { level: loud }");
    expect(one.map((e) => e.key)).toEqual(["log.level"]);
    const cross = errorsOf(
      'listen: { grpc: "0.0.0.0:1", connect: "0.0.0.0:2" }\nquota: { apps: { ghost: {} } }',
    );
    expect(cross.map((e) => e.key)).toEqual(["quota.apps.ghost", "listen.grpc", "listen.connect"]);
  });
});

describe("the schema", () => {
  it("has a schema for every registered account type, and only those", () => {
    expect(Object.keys(ACCOUNT_SCHEMAS).sort()).toEqual([...APP_TYPES].sort());
  });

  it("gives the types the broker reads: an app is an AppConfig whatever its account type", () => {
    const config = parseConfig(parse(MINIMAL), environment);
    expectTypeOf(config.apps[0]).toExtend<AppConfig | undefined>();
    expectTypeOf(config.refresh.marginMs).toBeNumber();
  });

  it("reports duplicate app ids beside the other problems of the same apps", () => {
    const keys = (yaml: string) => {
      try {
        parseConfig(parse(yaml), environment);
      } catch (err) {
        return (err as ConfigErrors).errors.map((e) => e.key);
      }
      return [];
    };
    expect(
      keys(`
apps:
  - { id: a, appid: wx1, secret: { env: SHOP_SECRET } }
  - { id: a, appid: wx2, secret: { env: NOPE }, prefetch: maybe }
`),
    ).toEqual(["apps[1].secret.env", "apps[1].prefetch", "apps[1].id"]);
  });

  it("is pure, so a reload can run it again: a new document and environment give a new frozen config", () => {
    const document = parse(MINIMAL);
    const before = structuredClone(document);
    const first = parseConfig(document, environment);
    const rotated = parseConfig(document, { ...environment, env: { SHOP_SECRET: "rotated" } });
    expect(document).toEqual(before);
    expect(first.apps[0]?.secret.reveal()).toBe("s3cr3t-value");
    expect(rotated.apps[0]?.secret.reveal()).toBe("rotated");
    expect(Object.isFrozen(rotated.security.clients)).toBe(true);
    expect(() =>
      parseConfig(
        parse(`${MINIMAL}  - { id: shop, appid: wx2, secret: { env: SHOP_SECRET } }\n`),
        environment,
      ),
    ).toThrow("config key 'apps[1].id': duplicate app id 'shop'");
  });
});

describe("applyEnvOverrides", () => {
  it("overrides single keys from TOKEN_BROKER_* variables", () => {
    const doc = applyEnvOverrides(
      parse(`${MINIMAL}\nsecurity: { allowUnauthenticatedNonLoopback: true }`),
      {
        TOKEN_BROKER_GRPC_LISTEN: "0.0.0.0:7000",
        TOKEN_BROKER_UPSTREAM_TIMEOUT_MS: "1500",
        TOKEN_BROKER_LOG_LEVEL: "warn",
      },
    );
    const config = parseConfig(doc, environment);
    expect(config.listen.grpc).toEqual({ host: "0.0.0.0", port: 7000 });
    expect(config.upstream.timeoutMs).toBe(1500);
    expect(config.log.level).toBe("warn");
  });
});

describe("listener limits and exposure (issue 9 item 2)", () => {
  it("defaults: 100 streams per connection, 10 s request timeout, 1000 / 10 health watches, reflection auto", () => {
    expect(parseConfig(parse(MINIMAL), environment).listen).toMatchObject({
      maxConcurrentStreams: 100,
      requestTimeoutMs: 10_000,
      maxHealthWatches: 1000,
      maxHealthWatchesPerPeer: 10,
      reflection: "auto",
    });
  });

  it("refuses out-of-range limits and an unknown reflection mode, naming each key", () => {
    let keys: string[] = [];
    try {
      parseConfig(
        parse(
          `${MINIMAL}listen: { maxConcurrentStreams: 0, requestTimeoutMs: 5, maxHealthWatchesPerPeer: 0, reflection: maybe }\n`,
        ),
        environment,
      );
    } catch (err) {
      keys = err instanceof ConfigErrors ? err.errors.map((e) => e.key) : [String(err)];
    }
    expect(keys).toEqual(
      expect.arrayContaining([
        "listen.maxConcurrentStreams",
        "listen.requestTimeoutMs",
        "listen.maxHealthWatchesPerPeer",
        "listen.reflection",
      ]),
    );
  });
});
