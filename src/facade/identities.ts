import { createHash, timingSafeEqual } from "node:crypto";
import type { CompiledClient, CompiledPolicy, Permission } from "../security/policy.js";
import {
  DEFAULT_BURST,
  DEFAULT_INVALIDATE_BURST,
  DEFAULT_INVALIDATE_RATE_PER_SECOND,
  DEFAULT_MAX_WATCH_STREAMS,
  DEFAULT_RATE_PER_SECOND,
} from "../security/policy.js";
import type { AppConfig } from "../token/app.js";
import type { Verdict } from "./invoke.js";
import { badSecret, type Family } from "./wechat-reply.js";

/** What a WeChat-style request may carry to say who sends it. */
export interface Presented {
  /** The `authorization` header, if any (`Bearer <api key>`). */
  readonly authorization: string | null;
  /** The `secret` / `corpsecret` parameter: the app's AppSecret, or a client's API key. */
  readonly secret: string | undefined;
  /** The subject CN of a verified client certificate (a TLS listener with a client CA). */
  readonly tlsIdentity: string | undefined;
}

export function refused(errcode: number, message: string): Verdict {
  return { refused: { errcode, message } };
}

/**
 * Who a façade caller is. Besides the broker's own clients (API keys,
 * certificates) the façade knows two kinds of caller WeChat knows:
 *
 * - the holder of an app's AppSecret (`AppSecret of <app>`): whoever has it
 *   could ask WeChat itself, so it may read and report the app's
 *   credentials and exchange its users' codes (get, invalidate, oauth) —
 *   never force a rotation or read other apps;
 * - the holder of an app's current access token (`access token of <app>`),
 *   on the endpoints WeChat guards with the token (tickets) and for reports
 *   of WeChat's rejections of it: get and invalidate, for that app.
 *
 * Their ids contain a space, so no configured client (ids without spaces)
 * can share their rate-limit buckets. AppSecrets are compared in constant
 * time through their SHA-256, API keys like the authenticate interceptor
 * compares them (every client's hash, whichever matches).
 */
export class FacadeIdentities {
  readonly #holders = new Map<string, CompiledClient>();

  constructor(
    private readonly policy: CompiledPolicy,
    private readonly allowAppSecrets: boolean,
  ) {}

  /** For the endpoints WeChat guards with the app's secret (token, stable_token, gettoken, OAuth code). */
  bySecret(app: AppConfig, family: Family, p: Presented): Verdict {
    const bearer = this.byBearer(p.authorization, family);
    if (bearer) return bearer;
    if (p.secret === undefined || p.secret === "") {
      const client = this.byCertificate(p.tlsIdentity);
      if (client) return { client };
      return refused(41004, `${family === "wecom" ? "corpsecret" : "secret"} is required`);
    }
    if (this.allowAppSecrets && sameSecret(p.secret, app.secret.reveal())) {
      return { client: this.secretHolder(app) };
    }
    const client = this.byKey(p.secret);
    if (client) return { client };
    return refused(
      badSecret(family),
      `the secret given for app '${app.id}' is neither its AppSecret nor a client's API key`,
    );
  }

  /** The client of an `authorization: Bearer` header; undefined when there is none. */
  byBearer(authorization: string | null, family: Family): Verdict | undefined {
    if (authorization === null) return undefined;
    const key = /^bearer[ \t]+(\S+)$/i.exec(authorization.trim())?.[1];
    if (key === undefined) {
      return refused(badSecret(family), "the authorization header must be 'Bearer <api key>'");
    }
    const client = this.byKey(key);
    return client
      ? { client }
      : refused(badSecret(family), "unknown API key: no client of this broker has it");
  }

  /** True when `secret` is the app's AppSecret (and AppSecrets are accepted). */
  isAppSecret(app: AppConfig, secret: string): boolean {
    return this.allowAppSecrets && sameSecret(secret, app.secret.reveal());
  }

  /** A configured client by its API key, compared with every client's hash. */
  byKey(key: string): CompiledClient | undefined {
    const digest = sha256(key);
    let found: CompiledClient | undefined;
    for (const client of this.policy.clients) {
      if (client.keyHash !== undefined && timingSafeEqual(digest, client.keyHash)) found = client;
    }
    return found;
  }

  /** A configured client by id, or an app's AppSecret holder (refresh handles name their client). */
  byId(id: string, app: AppConfig): CompiledClient | undefined {
    if (id === holderId("AppSecret", app))
      return this.allowAppSecrets ? this.secretHolder(app) : undefined;
    return this.policy.clients.find((c) => c.id === id);
  }

  secretHolder(app: AppConfig): CompiledClient {
    return this.#holder("AppSecret", app, ["get", "invalidate", "oauth"]);
  }

  tokenHolder(app: AppConfig): CompiledClient {
    return this.#holder("access token", app, ["get", "invalidate"]);
  }

  byCertificate(tlsIdentity: string | undefined): CompiledClient | undefined {
    if (tlsIdentity === undefined) return undefined;
    return this.policy.clients.find((c) => c.tlsIdentity === tlsIdentity);
  }

  #holder(what: string, app: AppConfig, permissions: Permission[]): CompiledClient {
    const id = holderId(what, app);
    let client = this.#holders.get(id);
    if (!client) {
      client = {
        id,
        keyHash: undefined,
        tlsIdentity: undefined,
        apps: new Set([app.id]),
        kinds: undefined,
        userTokenApps: new Set([app.id]),
        permissions: new Set(permissions),
        limits: {
          ratePerSecond: DEFAULT_RATE_PER_SECOND,
          burst: DEFAULT_BURST,
          reportRatePerSecond: DEFAULT_INVALIDATE_RATE_PER_SECOND,
          reportBurst: DEFAULT_INVALIDATE_BURST,
          maxWatchStreams: DEFAULT_MAX_WATCH_STREAMS,
        },
      };
      this.#holders.set(id, client);
    }
    return client;
  }
}

function holderId(what: string, app: AppConfig): string {
  return `${what} of ${app.id}`;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Constant time whatever the lengths: the hashes are compared, never the secrets. */
function sameSecret(given: string, actual: string): boolean {
  return timingSafeEqual(sha256(given), sha256(actual));
}
