import { createHash, timingSafeEqual } from "node:crypto";
import type { StoredCredential } from "../core/credential.js";
import type { Clock } from "../shared/clock.js";
import type { AppConfig, AppRegistry } from "../token/app.js";
import type { TokenManager } from "../token/token-manager.js";
import type { Family } from "./wechat-reply.js";

/** Whose access token a presented value is. */
export interface Owner {
  readonly app: AppConfig;
  /** The token's end has passed: WeChat would answer 42001. */
  readonly expired: boolean;
}

interface Served {
  readonly digest: Buffer;
  readonly endsAt: number;
}

/** The access tokens the façade handed out per app: the current one and the one before. */
const KEPT_PER_APP = 2;
/** WeChat keeps a replaced token working this long (facts §1): the previous one's end at most. */
const OVERLAP_MS = 300_000;

/** A user token kind: the one WeChat's web OAuth issues. */
const USER_TOKEN_KIND = "user_access_token";

/**
 * Finds the app behind an access token an SDK presents (on getticket, WeCom's
 * ticket endpoints, forwarded calls): the broker's current token of the app,
 * or one this replica handed out whose end (as told to the SDK) has not
 * passed, which covers the overlap after a rotation. A token handed out by
 * another replica and replaced since is not known here: the SDK gets 40001
 * and fetches the current one. Values are compared by SHA-256 in constant time.
 */
export class TokenOwners {
  readonly #served = new Map<string, Served[]>();
  readonly #digests = new WeakMap<StoredCredential, Buffer>();

  constructor(
    private readonly apps: AppRegistry,
    private readonly manager: TokenManager,
    private readonly clock: Clock,
  ) {}

  /**
   * Remembers an access token handed to an SDK, until the end it was told;
   * the one it replaces keeps at most WeChat's 5-minute overlap from now.
   */
  served(app: AppConfig, value: string, endsAt: number): void {
    const digest = sha256(value);
    const held = this.#served.get(app.id) ?? [];
    if (held[0]?.digest.equals(digest)) return;
    const overlapEnd = this.clock.now() + OVERLAP_MS;
    const older = held
      .filter((s) => !s.digest.equals(digest))
      .map((s) => ({ digest: s.digest, endsAt: Math.min(s.endsAt, overlapEnd) }));
    this.#served.set(app.id, [{ digest, endsAt }, ...older].slice(0, KEPT_PER_APP));
  }

  /** A token WeChat rejected (a caller said so): no longer accepted in place of the app's. */
  rejected(value: string): void {
    const digest = sha256(value);
    for (const [id, held] of this.#served) {
      this.#served.set(
        id,
        held.filter((s) => !s.digest.equals(digest)),
      );
    }
  }

  /** The app whose access token `value` is, among the apps of `family` (all when absent). */
  accessTokenOwner(value: string, family?: Family): Owner | undefined {
    const digest = sha256(value);
    const now = this.clock.now();
    for (const app of this.apps.all()) {
      if (family !== undefined && familyOf(app) !== family) continue;
      const current = this.manager.peek(app.id, "access_token");
      if (current && timingSafeEqual(this.#digestOf(current), digest)) {
        return { app, expired: current.expiresAt <= now };
      }
      for (const s of this.#served.get(app.id) ?? []) {
        if (timingSafeEqual(s.digest, digest)) return { app, expired: s.endsAt <= now };
      }
    }
    return undefined;
  }

  /** The app whose user token for `openid` is `value` (what /sns/* calls carry). */
  userTokenOwner(value: string, openid: string): AppConfig | undefined {
    const digest = sha256(value);
    for (const app of this.apps.all()) {
      if (familyOf(app) !== "wechat") continue;
      let held: StoredCredential | undefined;
      try {
        held = this.manager.peek(app.id, USER_TOKEN_KIND, openid);
      } catch {
        continue; // an app without users' tokens
      }
      if (held && timingSafeEqual(this.#digestOf(held), digest)) return app;
    }
    return undefined;
  }

  #digestOf(c: StoredCredential): Buffer {
    let digest = this.#digests.get(c);
    if (!digest) {
      digest = sha256(c.value);
      this.#digests.set(c, digest);
    }
    return digest;
  }
}

/** WeCom apps speak WeCom's errcodes and live on WeCom's host. */
export function familyOf(app: AppConfig): Family {
  return app.type === "wecom" ? "wecom" : "wechat";
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
