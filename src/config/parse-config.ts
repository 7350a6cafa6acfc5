import { DEFAULT_SCHEDULED_RESERVE, QUOTA_ENDPOINTS } from "../quota/index.js";
import { PERMISSIONS, type SecurityPolicy, validateSecurityPolicy } from "../security/index.js";
import { isLoopbackHost } from "../shared/loopback.js";
import { Secret } from "../shared/secret.js";
import { parseRedisUrl } from "../store/redis/connection.js";
import {
  APP_ID_PATTERN,
  APP_TYPES,
  type AppConfig,
  type AppType,
  kindsOfType,
} from "../token/app.js";
import { CREDENTIAL_KINDS, type CredentialKind } from "../token/credential.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "../token/refresh-policy.js";
import { DEFAULT_REPORT_BUDGET } from "../token/report-budget.js";
import {
  type BrokerConfig,
  type ClientConfig,
  ConfigError,
  type ListenAddress,
  type MetricsConfig,
  type Permission,
  type SecurityConfig,
  type StoreConfig,
  type TlsConfig,
} from "./config.js";
import { attempt, collectConfigErrors, hasConfigErrors, ObjectReader, report } from "./reader.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface ConfigEnvironment {
  /** Environment variables (for secrets named by `secret.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a secret file (for `secret.file`). */
  readFile: (path: string) => string;
}

/**
 * Validates a parsed config document into a frozen BrokerConfig. Pure apart
 * from the injected secret lookups; every error names the offending key, and
 * all of them are reported together (ConfigErrors).
 */
export function parseConfig(document: unknown, environment: ConfigEnvironment): BrokerConfig {
  return collectConfigErrors(() => parseDocument(document, environment));
}

function parseDocument(document: unknown, environment: ConfigEnvironment): BrokerConfig {
  const root = new ObjectReader("", document);
  const listen = root.object("listen");
  const upstream = root.object("upstream");
  const store = root.object("store");
  const cors = root.object("cors");
  const log = root.object("log");
  const shutdown = root.object("shutdown");
  const metrics = root.object("metrics");
  const alerts = root.object("alerts");
  const quota = root.object("quota");
  const invalidate = root.object("invalidate");
  const audit = root.object("audit");

  // Before the rest: the metrics listener takes its TLS files and allowlist from it.
  const security = parseSecurity(root.object("security"), environment);
  const config: BrokerConfig = {
    listen: {
      grpc: parseAddress(listen, "grpc", "127.0.0.1:50051"),
      connect: parseAddress(listen, "connect", "127.0.0.1:8080"),
      idleTimeoutMs: listen.number("idleTimeoutMs", 60_000, 1000, 3_600_000),
      maxConcurrentStreams: listen.number("maxConcurrentStreams", 100, 1, 10_000),
      requestTimeoutMs: listen.number("requestTimeoutMs", 10_000, 100, 600_000),
      maxHealthWatches: listen.number("maxHealthWatches", 1000, 1, 1_000_000),
      maxHealthWatchesPerPeer: listen.number("maxHealthWatchesPerPeer", 10, 1, 100_000),
      reflection: listen.oneOf("reflection", ["auto", "on", "off"] as const, "auto"),
    },
    upstream: {
      baseUrl: parseUrl(upstream, "baseUrl", "https://api.weixin.qq.com"),
      timeoutMs: upstream.number("timeoutMs", 5000, 100, 120_000),
    },
    refresh: parseRefresh(root.object("refresh")),
    store: attempt(() => parseStore(store), { type: "memory" }),
    cors: {
      allowedOrigins: cors
        .array("allowedOrigins")
        .map((o, i) => origin(cors.key(`allowedOrigins[${i}]`), o)),
    },
    log: { level: log.oneOf("level", LOG_LEVELS, "info") },
    shutdown: { graceMs: shutdown.number("graceMs", 5000, 0, 600_000) },
    metrics: parseMetrics(metrics, security),
    alerts: {
      webhooks: alerts
        .array("webhooks")
        .flatMap((w, i) =>
          attempt(() => [parseWebhook(alerts.key(`webhooks[${i}]`), w, environment)], []),
        ),
    },
    quota: {
      budgets: parseBudgets(quota.object("budgets")),
      apps: parseAppBudgets(quota.object("apps")),
      // Below 1: reports always keep some share; 0.9 leaves them a tenth.
      scheduledReserve: quota.number("scheduledReserve", DEFAULT_SCHEDULED_RESERVE, 0, 0.9),
    },
    apps: parseApps(root, environment),
    invalidate: {
      refreshBurst: invalidate.number("refreshBurst", DEFAULT_REPORT_BUDGET.burst, 1, 100),
      refreshRefillMs:
        invalidate.number(
          "refreshRefillSeconds",
          DEFAULT_REPORT_BUDGET.refillMs / 1000,
          1,
          86_400,
        ) * 1000,
    },
    security,
    audit: { destination: parseAuditDestination(audit) },
  };
  for (const r of [
    listen,
    upstream,
    store,
    cors,
    log,
    shutdown,
    metrics,
    alerts,
    quota,
    invalidate,
    audit,
    root,
  ]) {
    r.done();
  }
  // Cross-checks read values that may be defaults standing in for bad ones:
  // only run them on a document whose keys are all valid.
  if (hasConfigErrors()) return config;
  for (const appId of Object.keys(config.quota.apps)) {
    if (!config.apps.some((a) => a.id === appId)) {
      report(new ConfigError(`quota.apps.${appId}`, `no app with id '${appId}' is configured`));
    }
  }
  checkExposure(config);
  checkPlaintext(config);
  checkMetricsExposure(config);
  try {
    validateSecurityPolicy(securityPolicyOf(config.security));
  } catch (err) {
    report(new ConfigError("security", (err as Error).message));
  }
  return deepFreeze(config);
}

/** Without authentication, tokens go to anyone who can connect: loopback only unless opted in. */
function checkExposure(config: BrokerConfig): void {
  if (config.security.clients.length > 0 || config.security.allowUnauthenticatedNonLoopback) return;
  for (const [name, address] of [
    ["grpc", config.listen.grpc],
    ["connect", config.listen.connect],
  ] as const) {
    if (!isLoopbackHost(address.host)) {
      report(
        new ConfigError(
          `listen.${name}`,
          `${address.host} is not a loopback address and no clients are configured: anyone who can reach it could ` +
            "read every token. Configure security.clients (API keys or client certificates), or set " +
            "security.allowUnauthenticatedNonLoopback: true if a trusted network really protects it",
        ),
      );
    }
  }
}

/**
 * The RPC listeners that would carry API keys (and the tokens they fetch) in
 * cleartext beyond this machine: not loopback, no TLS, and some client has a
 * key. Refused at parse time unless security.allowPlaintextNonLoopback, and
 * then warned about at every start.
 */
export function plaintextListeners(config: BrokerConfig): Array<"grpc" | "connect"> {
  if (config.security.tls || !config.security.clients.some((c) => c.apiKeySha256)) return [];
  return (["grpc", "connect"] as const).filter((name) => !isLoopbackHost(config.listen[name].host));
}

function checkPlaintext(config: BrokerConfig): void {
  if (config.security.allowPlaintextNonLoopback) return;
  for (const name of plaintextListeners(config)) {
    report(
      new ConfigError(
        `listen.${name}`,
        `${config.listen[name].host} is not a loopback address and security.tls is not set: API keys and ` +
          "tokens would cross the network in cleartext. Configure security.tls, or set " +
          "security.allowPlaintextNonLoopback: true if TLS ends in front of the broker (a proxy or mesh)",
      ),
    );
  }
}

/** The metrics listener reveals app ids, quota use and refresh timing: loopback, or TLS and a key. */
function checkMetricsExposure(config: BrokerConfig): void {
  const m = config.metrics;
  if (!m.listen || isLoopbackHost(m.listen.host) || m.allowUnprotectedNonLoopback) return;
  const clientCerts = config.security.tls?.requireClientCert === true;
  if (m.tls && (m.apiKeySha256 !== undefined || clientCerts)) return;
  const missing = m.tls ? "metrics.apiKeySha256" : "TLS (security.tls with metrics.tls)";
  report(
    new ConfigError(
      "metrics.listen",
      `${m.listen.host} is not a loopback address and the metrics listener has no ${missing}: anyone ` +
        "who can reach it could read app ids, quota use and refresh timing. Configure security.tls and " +
        "metrics.apiKeySha256 (or client certificates with security.tls.requireClientCert), or set " +
        "metrics.allowUnprotectedNonLoopback: true if a trusted network really protects it",
    ),
  );
}

function parseMetrics(r: ObjectReader, security: SecurityConfig): MetricsConfig {
  const listen = r.raw("listen") === undefined ? undefined : parseAddress(r, "listen", "");
  const tls = r.boolean("tls", security.tls !== undefined);
  if (tls && !security.tls) {
    report(
      new ConfigError(r.key("tls"), "needs security.tls (the metrics listener uses its files)"),
    );
  }
  let apiKeySha256: string | undefined;
  if (r.raw("apiKeySha256") !== undefined) {
    apiKeySha256 = r.string("apiKeySha256").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(apiKeySha256)) {
      report(
        new ConfigError(
          r.key("apiKeySha256"),
          "expected 64 hex characters (SHA-256 of the key; see `token-broker hash-key`)",
        ),
      );
    }
  }
  const allowCidrs =
    r.raw("allowCidrs") === undefined
      ? security.allowCidrs
      : r.array("allowCidrs").map((v, i) => {
          if (typeof v !== "string" || !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v)) {
            report(
              new ConfigError(
                r.key(`allowCidrs[${i}]`),
                "expected a CIDR like 10.0.0.0/8 or fd00::/8",
              ),
            );
          }
          return String(v);
        });
  return {
    ...(listen ? { listen } : {}),
    tls,
    ...(apiKeySha256 ? { apiKeySha256 } : {}),
    ...(allowCidrs ? { allowCidrs } : {}),
    allowUnprotectedNonLoopback: r.boolean("allowUnprotectedNonLoopback", false),
  };
}

function parseSecurity(r: ObjectReader, environment: ConfigEnvironment): SecurityConfig {
  const tlsRaw = r.raw("tls");
  let tls: TlsConfig | undefined;
  if (tlsRaw !== undefined && tlsRaw !== null) {
    const t = r.object("tls");
    const clientCaFile = t.raw("clientCaFile") === undefined ? undefined : t.string("clientCaFile");
    tls = {
      certFile: t.string("certFile"),
      keyFile: t.string("keyFile"),
      ...(clientCaFile ? { clientCaFile } : {}),
      requireClientCert: t.boolean("requireClientCert", false),
    };
    if (tls.requireClientCert && !clientCaFile) {
      report(
        new ConfigError(
          t.key("requireClientCert"),
          "needs clientCaFile (the CA that signs client certificates)",
        ),
      );
    }
    t.done();
  }
  const ids = new Set<string>();
  const clients = r
    .array("clients")
    .flatMap((raw, i): ClientConfig[] =>
      attempt(() => [parseClient(new ObjectReader(r.key(`clients[${i}]`), raw))], []),
    );
  function parseClient(c: ObjectReader): ClientConfig {
    const id = c.string("id");
    if (ids.has(id)) throw new ConfigError(c.key("id"), `duplicate client id '${id}'`);
    ids.add(id);
    const apiKeySha256 =
      c.raw("apiKeySha256") === undefined ? undefined : c.string("apiKeySha256").toLowerCase();
    if (apiKeySha256 !== undefined && !/^[0-9a-f]{64}$/.test(apiKeySha256)) {
      throw new ConfigError(
        c.key("apiKeySha256"),
        "expected 64 hex characters (SHA-256 of the key; see `token-broker hash-key`)",
      );
    }
    const tlsIdentity = c.raw("tlsIdentity") === undefined ? undefined : c.string("tlsIdentity");
    if (!apiKeySha256 && !tlsIdentity) {
      throw new ConfigError(c.path, "needs apiKeySha256 or tlsIdentity to recognise the client");
    }
    const strings = (name: string, allowed?: readonly string[]) =>
      c.array(name).map((v, j) => {
        if (typeof v !== "string" || (allowed && !allowed.includes(v))) {
          throw new ConfigError(
            c.key(`${name}[${j}]`),
            allowed ? `expected one of ${allowed.join(", ")}` : "expected a string",
          );
        }
        return v;
      });
    const apps = strings("apps");
    if (apps.length === 0)
      throw new ConfigError(c.key("apps"), 'list the app ids it may use, or ["*"]');
    const kinds = c.raw("kinds") === undefined ? undefined : strings("kinds", CREDENTIAL_KINDS);
    const permissions = strings("permissions", PERMISSIONS) as Permission[];
    if (permissions.length === 0)
      throw new ConfigError(
        c.key("permissions"),
        "expected at least one of get, watch, invalidate, admin",
      );
    const optional = (name: string, min: number, max: number) =>
      c.raw(name) === undefined ? {} : { [name]: c.number(name, 0, min, max) };
    const client: ClientConfig = {
      id,
      ...(apiKeySha256 ? { apiKeySha256 } : {}),
      ...(tlsIdentity ? { tlsIdentity } : {}),
      apps,
      ...(kinds ? { kinds } : {}),
      permissions,
      ...optional("ratePerSecond", 0.01, 100_000),
      ...optional("burst", 1, 1_000_000),
      ...optional("invalidateRatePerSecond", 0.01, 100_000),
      ...optional("invalidateBurst", 1, 1_000_000),
      ...optional("maxWatchStreams", 1, 100_000),
    };
    c.done();
    return client;
  }
  const cidrs = (name: string) =>
    r.raw(name) === undefined
      ? undefined
      : r.array(name).map((v, i) => {
          if (typeof v !== "string" || !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v)) {
            report(
              new ConfigError(
                r.key(`${name}[${i}]`),
                "expected a CIDR like 10.0.0.0/8 or fd00::/8",
              ),
            );
          }
          return String(v);
        });
  const allowCidrs = cidrs("allowCidrs");
  const trustedProxies = cidrs("trustedProxies");
  const encryptionKeys = r
    .array("encryptionKeys")
    .flatMap((raw, i) =>
      attempt(() => [parseEncryptionKey(new ObjectReader(r.key(`encryptionKeys[${i}]`), raw))], []),
    );
  function parseEncryptionKey(k: ObjectReader) {
    const id = k.string("id");
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id))
      throw new ConfigError(k.key("id"), "1-32 letters, digits, '_' or '-'");
    const key = parseSecretRef(k, "key", environment);
    if (Buffer.from(key.reveal(), "base64").length !== 32) {
      throw new ConfigError(
        k.key("key"),
        "expected 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)",
      );
    }
    k.done();
    return { id, key };
  }
  const security: SecurityConfig = {
    ...(tls ? { tls } : {}),
    clients,
    ...(allowCidrs ? { allowCidrs } : {}),
    ...(trustedProxies ? { trustedProxies } : {}),
    allowUnauthenticatedNonLoopback: r.boolean("allowUnauthenticatedNonLoopback", false),
    allowPlaintextNonLoopback: r.boolean("allowPlaintextNonLoopback", false),
    encryptionKeys,
    ...parseAcceptPlaintextUntil(r, encryptionKeys.length > 0),
  };
  r.done();
  return security;
}

/** The migration window for a store written before encryption keys were set: an ISO time, never open-ended. */
function parseAcceptPlaintextUntil(
  r: ObjectReader,
  haveKeys: boolean,
): { acceptPlaintextUntil?: number } {
  if (r.raw("acceptPlaintextUntil") === undefined) return {};
  const text = r.string("acceptPlaintextUntil");
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)
    ? Date.parse(text)
    : Number.NaN;
  if (Number.isNaN(at))
    throw new ConfigError(
      r.key("acceptPlaintextUntil"),
      "expected an ISO 8601 time with its zone, e.g. 2026-12-31T00:00:00Z",
    );
  if (!haveKeys)
    throw new ConfigError(
      r.key("acceptPlaintextUntil"),
      "only means something with security.encryptionKeys (values are stored unencrypted without them)",
    );
  return { acceptPlaintextUntil: at };
}

function parseAuditDestination(r: ObjectReader): BrokerConfig["audit"]["destination"] {
  const v = r.string("destination", "stderr");
  if (v === "stderr" || v === "stdout") return v;
  if (!v.startsWith("/")) {
    report(
      new ConfigError(r.key("destination"), "expected stderr, stdout or an absolute file path"),
    );
    return "stderr";
  }
  return { file: v };
}

function parseStore(r: ObjectReader): StoreConfig {
  const type = r.oneOf("type", ["memory", "redis"] as const, "memory");
  if (type === "memory") return { type };
  const url = r.string("url");
  try {
    parseRedisUrl(url);
  } catch (err) {
    // The URL may hold a password: name the key, not the value.
    report(new ConfigError(r.key("url"), (err as Error).message));
  }
  const prefix = r.string("prefix", "tokenbroker");
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) {
    report(
      new ConfigError(r.key("prefix"), "1-64 characters: letters, digits, '_', '.', ':' or '-'"),
    );
  }
  return {
    type,
    url,
    prefix,
    lockTtlMs: r.number("lockTtlMs", 30_000, 1000, 120_000),
    schedulePollMs: r.number("schedulePollMs", 1000, 50, 60_000),
  };
}

function parseBudgets(r: ObjectReader): Record<string, number | null> {
  const budgets: Record<string, number | null> = {};
  for (const endpoint of QUOTA_ENDPOINTS) {
    const v = r.raw(endpoint);
    if (v === undefined) continue;
    if (v === null || v === "unmetered") budgets[endpoint] = null;
    else budgets[endpoint] = r.number(endpoint, 0, 0, 10_000_000);
  }
  r.done();
  return budgets;
}

function parseAppBudgets(r: ObjectReader): Record<string, Record<string, number | null>> {
  const out: Record<string, Record<string, number | null>> = {};
  for (const appId of r.keys()) out[appId] = parseBudgets(r.object(appId));
  r.done();
  return out;
}

function parseWebhook(key: string, raw: unknown, environment: ConfigEnvironment) {
  const w = new ObjectReader(key, raw);
  const format = w.oneOf("format", ["generic", "wecom"] as const, "generic");
  const url =
    typeof w.raw("url") === "string"
      ? new Secret(w.string("url"))
      : parseSecretRef(w, "url", environment);
  try {
    const parsed = new URL(url.reveal());
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error();
  } catch {
    throw new ConfigError(w.key("url"), "expected an http(s) URL");
  }
  w.done();
  return { url, format };
}

function parseAddress(r: ObjectReader, name: string, fallback: string): ListenAddress {
  const v = r.string(name, fallback);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    report(
      new ConfigError(
        r.key(name),
        `expected host:port (e.g. 127.0.0.1:50051 or [::1]:50051), got '${v}'`,
      ),
    );
    return { host: "127.0.0.1", port: 0 };
  }
  return { host: m[1] ?? m[2] ?? "", port };
}

function parseUrl(r: ObjectReader, name: string, fallback: string): string {
  const v = r.string(name, fallback);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    report(new ConfigError(r.key(name), `expected an http(s) URL, got '${v}'`));
    return fallback;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    report(new ConfigError(r.key(name), `expected an http(s) URL, got '${v}'`));
    return fallback;
  }
  return v.replace(/\/+$/, "");
}

function origin(key: string, v: unknown): string {
  if (typeof v !== "string" || !(v === "*" || /^https?:\/\/[^/]+$/.test(v))) {
    report(
      new ConfigError(
        key,
        `expected an origin like https://example.com or "*", got ${JSON.stringify(v)}`,
      ),
    );
  }
  return String(v);
}

function parseRefresh(r: ObjectReader): RefreshPolicy {
  const d = DEFAULT_REFRESH_POLICY;
  const policy: RefreshPolicy = {
    marginMs: r.number("marginSeconds", d.marginMs / 1000, 1, 3600) * 1000,
    // Below 300 s: WeChat rotates a stable token only in its last 5 minutes.
    stableMarginMs: r.number("stableMarginSeconds", d.stableMarginMs / 1000, 1, 299) * 1000,
    maxMarginRatio: d.maxMarginRatio,
    jitterRatio: r.number("jitterRatio", d.jitterRatio, 0, 1),
    minRemainingMs: r.number("minRemainingSeconds", d.minRemainingMs / 1000, 0, 600) * 1000,
    ticketMinRemainingMs: d.ticketMinRemainingMs,
    retryInitialMs: r.number("retryInitialMs", d.retryInitialMs, 10, 600_000),
    retryMaxMs: r.number("retryMaxMs", d.retryMaxMs, 10, 3_600_000),
    slowRetryMs: r.number("slowRetryMs", d.slowRetryMs, 10, 3_600_000),
  };
  r.done();
  // WeChat rotates a stable token only in its last 300 s; a call earlier returns the same token.
  const earliest = (policy.stableMarginMs * (1 + policy.jitterRatio)) / 1000;
  if (earliest > 300) {
    report(
      new ConfigError(
        r.key("stableMarginSeconds"),
        `with jitterRatio ${policy.jitterRatio} a stable-token refresh could start ${earliest} s before ` +
          "expiry, before WeChat's last-300-s rotation window; keep stableMarginSeconds × (1 + jitterRatio) ≤ 300 " +
          `(at most ${Math.floor(300 / (1 + policy.jitterRatio))} s with this jitterRatio)`,
      ),
    );
  }
  if (policy.retryMaxMs < policy.retryInitialMs) {
    report(new ConfigError(r.key("retryMaxMs"), "must not be below retryInitialMs"));
  }
  return policy;
}

function parseApps(root: ObjectReader, environment: ConfigEnvironment): AppConfig[] {
  const ids = new Set<string>();
  return root
    .array("apps")
    .flatMap((raw, i) =>
      attempt(() => [parseApp(new ObjectReader(root.key(`apps[${i}]`), raw))], []),
    );
  function parseApp(a: ObjectReader): AppConfig {
    const id = a.string("id");
    if (!APP_ID_PATTERN.test(id)) {
      throw new ConfigError(
        a.key("id"),
        "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
      );
    }
    if (ids.has(id)) throw new ConfigError(a.key("id"), `duplicate app id '${id}'`);
    ids.add(id);
    const type = a.oneOf("type", APP_TYPES, "official_account");
    const kinds = parseAppKinds(a, type);
    const app: AppConfig = {
      id,
      type,
      appid: a.string("appid"),
      secret: parseSecret(a, environment),
      tokenMode: a.oneOf("tokenMode", ["classic", "stable"] as const, "classic"),
      prefetch: a.boolean("prefetch", true),
      ...(kinds ? { kinds } : {}),
    };
    a.done();
    return app;
  }
}

/** apps[].kinds: which of its type's kinds an app offers (tickets need the access token). */
function parseAppKinds(a: ObjectReader, type: AppType): CredentialKind[] | undefined {
  if (a.raw("kinds") === undefined) return undefined;
  const offered = kindsOfType(type);
  const kinds: CredentialKind[] = [];
  a.array("kinds").forEach((v, j) => {
    if (!offered.includes(v as CredentialKind)) {
      report(new ConfigError(a.key(`kinds[${j}]`), `a ${type} offers ${offered.join(", ")}`));
    } else if (!kinds.includes(v as CredentialKind)) kinds.push(v as CredentialKind);
  });
  if (!kinds.includes("access_token"))
    report(
      new ConfigError(a.key("kinds"), "must include access_token (tickets are fetched with it)"),
    );
  return kinds;
}

/** AppSecrets come from an env var or a file, never inline in the config. */
function parseSecret(a: ObjectReader, environment: ConfigEnvironment): Secret {
  if (typeof a.raw("secret") === "string") {
    throw new ConfigError(
      a.key("secret"),
      "inline secrets are not accepted; use {env: VAR_NAME} or {file: /path}",
    );
  }
  return parseSecretRef(a, "secret", environment);
}

/** A secret given as {env: VAR_NAME} or {file: /path}. */
function parseSecretRef(
  a: ObjectReader,
  field: string,
  { env, readFile }: ConfigEnvironment,
): Secret {
  const s = new ObjectReader(a.key(field), a.raw(field));
  const envName = s.raw("env");
  const file = s.raw("file");
  s.done();
  if ((envName === undefined) === (file === undefined)) {
    throw new ConfigError(s.path, "give exactly one of {env: VAR_NAME} or {file: /path}");
  }
  let value: string;
  if (envName !== undefined) {
    if (typeof envName !== "string" || envName === "")
      throw new ConfigError(s.key("env"), "expected a variable name");
    value = env[envName] ?? "";
    if (value === "")
      throw new ConfigError(s.key("env"), `environment variable ${envName} is not set or empty`);
  } else {
    if (typeof file !== "string" || file === "")
      throw new ConfigError(s.key("file"), "expected a file path");
    try {
      value = readFile(file).trim();
    } catch (err) {
      throw new ConfigError(
        s.key("file"),
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (value === "") throw new ConfigError(s.key("file"), `${file} is empty`);
  }
  return new Secret(value);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof Secret) && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The part of the security config the request guard enforces. */
export function securityPolicyOf(security: SecurityConfig): SecurityPolicy {
  return {
    clients: security.clients,
    ...(security.allowCidrs ? { allowCidrs: security.allowCidrs } : {}),
    ...(security.trustedProxies ? { trustedProxies: security.trustedProxies } : {}),
  };
}
