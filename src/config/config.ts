import type { Secret } from "../shared/secret.js";
import type { AppConfig } from "../token/app.js";
import type { RefreshPolicy } from "../token/refresh-policy.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Where credentials live: in this process, or in Redis shared by replicas. */
export type StoreConfig =
  | { readonly type: "memory" }
  | {
      readonly type: "redis";
      /** redis://, rediss://, redis-sentinel://…/master or redis-cluster:// (see connection.ts). */
      readonly url: string;
      /** Prefix of every key and channel, so several brokers can share one Redis. */
      readonly prefix: string;
      /** Lease of the refresh lock; well under WeChat's 5-minute overlap. */
      readonly lockTtlMs: number;
      /** How often each replica looks for due refreshes. */
      readonly schedulePollMs: number;
    };

/** The broker's whole configuration, validated and frozen at start-up. */
export interface BrokerConfig {
  readonly listen: {
    readonly grpc: ListenAddress;
    readonly connect: ListenAddress;
    /** Connections without a call for this long are closed. */
    readonly idleTimeoutMs: number;
    /** HTTP/2 streams one connection may have open at once, on both listeners. */
    readonly maxConcurrentStreams: number;
    /** A request not fully received in this time is answered DEADLINE_EXCEEDED / reset. */
    readonly requestTimeoutMs: number;
    /** Health/Watch streams open at once: in total, and from one peer address. */
    readonly maxHealthWatches: number;
    readonly maxHealthWatchesPerPeer: number;
    /** Server reflection: auto = only when every listener is on loopback. */
    readonly reflection: "auto" | "on" | "off";
  };
  readonly upstream: { readonly baseUrl: string; readonly timeoutMs: number };
  readonly refresh: RefreshPolicy;
  readonly store: StoreConfig;
  readonly cors: { readonly allowedOrigins: readonly string[] };
  readonly log: { readonly level: string };
  readonly shutdown: { readonly graceMs: number };
  /** Where Prometheus scrapes /metrics; absent: no metrics listener. */
  readonly metrics: MetricsConfig;
  readonly alerts: { readonly webhooks: readonly WebhookConfig[] };
  readonly security: SecurityConfig;
  /** Where audit records go: a separate structured stream. */
  readonly audit: { readonly destination: "stderr" | "stdout" | { readonly file: string } };
  /** Daily budgets per WeChat endpoint, below WeChat's own limits. */
  readonly quota: {
    readonly budgets: Readonly<Record<string, number | null>>;
    /** Per app id, replaces the budgets above (e.g. 9000 for a mini program's token). */
    readonly apps: Readonly<Record<string, Readonly<Record<string, number | null>>>>;
    /** The share of each daily budget refreshes caused by InvalidateToken may not use. */
    readonly scheduledReserve: number;
  };
  /** Refreshes InvalidateToken reports may cause per credential: a burst, then one per refill. */
  readonly invalidate: { readonly refreshBurst: number; readonly refreshRefillMs: number };
  readonly apps: readonly AppConfig[];
}

import type { Permission } from "../security/index.js";

export type { Permission };

/** One client of the broker and what it may do. */
export interface ClientConfig {
  readonly id: string;
  /** Hex SHA-256 of its API key (sent as `authorization: Bearer <key>`). */
  readonly apiKeySha256?: string;
  /** The subject CN of its client certificate (mTLS). */
  readonly tlsIdentity?: string;
  /** App ids, or ["*"]. */
  readonly apps: readonly string[];
  /** Credential kinds; all when absent. */
  readonly kinds?: readonly string[];
  readonly permissions: readonly Permission[];
  readonly ratePerSecond?: number;
  readonly burst?: number;
  /** InvalidateToken's own rate limit, separate from GetToken's. */
  readonly invalidateRatePerSecond?: number;
  readonly invalidateBurst?: number;
  readonly maxWatchStreams?: number;
}

export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that signs client certificates; enables mTLS identities. */
  readonly clientCaFile?: string;
  readonly requireClientCert: boolean;
}

export interface SecurityConfig {
  readonly tls?: TlsConfig;
  /** Empty: no authentication (then the broker listens on loopback only, unless allowed below). */
  readonly clients: readonly ClientConfig[];
  readonly allowCidrs?: readonly string[];
  readonly trustedProxies?: readonly string[];
  readonly allowUnauthenticatedNonLoopback: boolean;
  /** Accept API keys over plaintext on a non-loopback listener (TLS ends in front of the broker). */
  readonly allowPlaintextNonLoopback: boolean;
  /** AES-256-GCM keys for token values at rest in Redis; the first encrypts, all decrypt. */
  readonly encryptionKeys: readonly { readonly id: string; readonly key: Secret }[];
  /**
   * Migration window (epoch ms): until then, values stored unencrypted are
   * still read with encryption keys configured; afterwards they are refused.
   */
  readonly acceptPlaintextUntil?: number;
}

/** The metrics listener and what guards it (the scrape shows app ids, quota use, refresh timing). */
export interface MetricsConfig {
  /** Absent: no metrics listener. */
  readonly listen?: ListenAddress;
  /** Serve HTTPS with security.tls's files (its client CA and requireClientCert too). */
  readonly tls: boolean;
  /** Hex SHA-256 of the Bearer key a scrape must send. */
  readonly apiKeySha256?: string;
  /** CIDRs scrapers may connect from; absent: security.allowCidrs. */
  readonly allowCidrs?: readonly string[];
  /** Accept a non-loopback address without TLS and a key (or client certificates). */
  readonly allowUnprotectedNonLoopback: boolean;
}

export interface WebhookConfig {
  /** The webhook URL; WeCom robot URLs carry a key, so it may come from env or a file. */
  readonly url: Secret;
  readonly format: "generic" | "wecom";
}

/** A config problem, naming the key at fault (e.g. `apps[1].secret.env`). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`config key '${key}': ${problem}`);
    this.name = "ConfigError";
  }
}

/**
 * Every problem found in one config document, so an operator fixes them all
 * in one edit instead of one per start. `key` is the first problem's key.
 */
export class ConfigErrors extends ConfigError {
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors[0]?.key ?? "(root)", "");
    this.name = "ConfigErrors";
    this.message =
      errors.length === 1
        ? (errors[0]?.message ?? "")
        : `${errors.length} problems:\n${errors.map((e) => `  - ${e.message}`).join("\n")}`;
  }
}
