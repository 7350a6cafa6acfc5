import { createHash } from "node:crypto";
import type { CredentialKey } from "../core/credential.js";
import type { UpstreamClients } from "../core/kind.js";
import type { ExchangeLedger } from "../core/ports/exchange-ledger.js";
import type { UpstreamGate } from "../core/ports/upstream-gate.js";
import { UpstreamError } from "../core/upstream-error.js";
import { encodeGrantState } from "../credentials/wechat/grant-state.js";
import { EXCHANGE_ENDPOINT } from "../credentials/wechat/oauth-client.js";
import { BAD_CODE_ERRCODE } from "../credentials/wechat/oauth-errcodes.js";
import type { Clock } from "../shared/clock.js";
import {
  type BrokerError,
  PermissionDeniedError,
  ReauthorizeError,
  UpstreamUnavailableError,
} from "../shared/errors.js";
import type { Logger } from "../shared/logger.js";
import { raceAbort } from "../shared/race-abort.js";
import type { Grants } from "../token/grants.js";
import { grantDetails, toBrokerError } from "../token/to-broker-error.js";
import {
  decodeOutcome,
  type ExchangeOutcome,
  encodeOutcome,
  errorOf,
  failureOf,
} from "./exchange-outcome.js";

/** The kind a code exchange creates. */
export const USER_TOKEN_KIND = "user_access_token";

/** WeChat's codes live 5 minutes (R33): outcomes are kept as long, so repeats get the same answer. */
export const CODE_LIFE_MS = 5 * 60_000;

/** A refresh token lives 30 days from the authorization and is never extended (facts §7.2). */
export const REFRESH_TOKEN_LIFE_MS = 30 * 24 * 3_600_000;

export interface CodeExchangeDeps {
  readonly ledger: ExchangeLedger;
  readonly upstreams: UpstreamClients;
  readonly gate: UpstreamGate;
  readonly grants: Grants;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a claim lasts before another caller may take over (a holder that died): above the upstream timeout. */
  readonly claimTtlMs: number;
  /** How often a caller waiting for another's exchange looks again. */
  readonly pollMs?: number;
  /** Called after each grant stored (the broker alerts when its store cannot keep grants). */
  readonly onGrantStored?: () => void;
}

/**
 * Trades a user's authorization code for the user's grant, once per code:
 * WeChat accepts a code once (40163 after), and the same code arrives many
 * times (double redirects, the Back button, a page served by two replicas).
 * The first caller claims the code in the exchange ledger and calls WeChat,
 * never retrying (a retry would burn the code); everyone else presenting
 * the code within its life gets that call's outcome, if they are the same
 * client. Codes are named by a digest; the code itself is never stored or logged.
 */
export class CodeExchange {
  readonly #local = new Map<string, Promise<ExchangeOutcome>>();
  readonly #never = new AbortController().signal;

  constructor(private readonly d: CodeExchangeDeps) {}

  async exchange(appId: string, code: string, client: string, signal: AbortSignal) {
    // Validates the app and its kind before anything reaches WeChat.
    const account = this.d.grants.account({ appId, kind: USER_TOKEN_KIND, subject: "_" });
    const id = exchangeId(appId, code);
    let flight = this.#local.get(id);
    if (!flight) {
      flight = this.#settle(id, account, code, client).finally(() => this.#local.delete(id));
      this.#local.set(id, flight);
    }
    const outcome = await raceAbort(flight, signal);
    return { outcome: this.#told(outcome, client, id), id };
  }

  /** The outcome for `client`: another client's exchange is not shared with it. */
  #told(outcome: ExchangeOutcome & { owner?: string }, client: string, _id: string) {
    if (outcome.owner !== undefined && outcome.owner !== client) {
      throw new PermissionDeniedError(
        "this authorization code was exchanged by another client of the broker; each code belongs to the client that exchanged it first",
      );
    }
    if (!outcome.ok) throw errorOf(outcome.error);
    return outcome;
  }

  /** Claims the code, or waits for whoever holds it, until an outcome is settled. */
  async #settle(
    id: string,
    account: { id: string; appid: string; secret: { reveal(): string } },
    code: string,
    client: string,
  ): Promise<ExchangeOutcome & { owner?: string }> {
    const { ledger, clock } = this.d;
    const giveUpAt = clock.now() + this.d.claimTtlMs * 2;
    for (;;) {
      const claim = await ledger.claim(id, client, this.d.claimTtlMs);
      if (claim.state === "settled") {
        return { ...decodeOutcome(claim.outcome), owner: claim.owner };
      }
      if (claim.state === "claimed") {
        const outcome = await this.#callWechat(account, code);
        if ("notCalled" in outcome) {
          await ledger.release(id, client);
          throw outcome.notCalled;
        }
        await ledger.settle(id, client, encodeOutcome(outcome), CODE_LIFE_MS);
        return { ...outcome, owner: client };
      }
      if (clock.now() >= giveUpAt) {
        throw new UpstreamUnavailableError(
          "another broker replica is exchanging this code and has not finished; retry shortly",
        );
      }
      await sleep(clock, this.d.pollMs ?? 100);
    }
  }

  /** The one upstream call for a code, and the grant it gives stored. */
  async #callWechat(
    account: { id: string; appid: string; secret: { reveal(): string } },
    code: string,
  ): Promise<ExchangeOutcome | { readonly notCalled: BrokerError }> {
    const { upstreams, gate, clock } = this.d;
    // No timer of its own: the upstream client times the call out, and the
    // grant's write is the refresher's (its lock lease bounds it). A caller
    // that gives up does not stop the exchange: others may be waiting for it.
    const signal = this.#never;
    const startedAt = clock.now();
    let grant: Awaited<ReturnType<UpstreamClients["oauth"]["exchangeCode"]>>;
    try {
      grant = await gate.call(
        account.id,
        EXCHANGE_ENDPOINT,
        () =>
          upstreams.oauth.exchangeCode(
            { appid: account.appid, secret: account.secret.reveal() },
            code,
            signal,
          ),
        // Never retried: WeChat may have used the code even when its answer was lost.
        { retries: false, signal, purpose: "any" },
      );
    } catch (err) {
      // Refused before WeChat (an open circuit, the ledger): the code is unused.
      if (err instanceof UpstreamError && err.failure.kind === "not_called") {
        return { notCalled: toBrokerError(err, { appId: account.id, kind: USER_TOKEN_KIND }) };
      }
      return failureOf(this.#exchangeError(account.id, err));
    }
    const key: CredentialKey = { appId: account.id, kind: USER_TOKEN_KIND, subject: grant.openid };
    try {
      const credential = await this.d.grants.store(
        key,
        {
          value: grant.value,
          expiresInSeconds: grant.expiresInSeconds,
          state: encodeGrantState({
            refreshToken: grant.refreshToken,
            scope: grant.scope,
            ...(grant.unionid === undefined ? {} : { unionid: grant.unionid }),
            ...(grant.snapshotUser ? { snapshotUser: true } : {}),
          }),
          renewableUntil: startedAt + REFRESH_TOKEN_LIFE_MS,
        },
        this.#never,
      );
      this.d.logger.info(
        { app: account.id, openid: grant.openid, version: credential.version },
        "user authorized: grant stored",
      );
      this.d.onGrantStored?.();
      return {
        ok: true,
        openid: grant.openid,
        ...(grant.unionid === undefined ? {} : { unionid: grant.unionid }),
        scope: grant.scope,
        snapshotUser: grant.snapshotUser,
        credential,
      };
    } catch (err) {
      this.d.logger.error(
        { app: account.id, openid: grant.openid, err: (err as Error).message },
        "user authorized but the grant could not be stored",
      );
      return failureOf(
        new UpstreamUnavailableError(
          "WeChat issued the user's grant but the broker could not store it; the code is used: " +
            "send the user through WeChat's authorization again",
        ),
      );
    }
  }

  #exchangeError(appId: string, err: unknown): BrokerError {
    if (err instanceof UpstreamError && err.category === "grant") {
      const details = {
        ...grantDetails({ appId, kind: USER_TOKEN_KIND }),
        errcode: String(err.errcode),
      };
      return new ReauthorizeError(
        `WeChat refused the authorization code (errcode ${err.errcode}: ${err.remedy ?? err.detail}); ` +
          "send the user through WeChat's authorization again for a new code",
        details,
        err.errcode === BAD_CODE_ERRCODE,
      );
    }
    if (
      err instanceof UpstreamError &&
      err.failure.kind !== "errcode" &&
      err.failure.kind !== "not_called"
    ) {
      // Timeouts, lost connections: WeChat may have used the code; it is not tried again.
      return new ReauthorizeError(
        `the exchange with WeChat failed (${err.detail}) and cannot be retried, since WeChat may have used the code; ` +
          "send the user through WeChat's authorization again",
        grantDetails({ appId, kind: USER_TOKEN_KIND }),
      );
    }
    return toBrokerError(err, { appId, kind: USER_TOKEN_KIND });
  }
}

/** The ledger's name for a code: a digest, so no code reaches a key, a log or a metric. */
export function exchangeId(appId: string, code: string): string {
  return createHash("sha256").update(`oauth-code\0${appId}\0${code}`).digest("base64url");
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.schedule(resolve, ms));
}
