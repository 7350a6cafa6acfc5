import type { QuotaPurpose } from "../quota/index.js";
import { UpstreamError } from "../upstream/upstream-error.js";
import type { UpstreamGuard } from "../upstream/upstream-guard.js";
import type { FetchedCredential, TicketType, WechatClient } from "../upstream/wechat-client.js";
import type { AppConfig } from "./app.js";
import type { CredentialKind, StoredCredential } from "./credential.js";

/** What the fetcher needs of the access-token cache to fetch tickets. */
export interface AccessTokenProvider {
  getAccessToken(appId: string, signal: AbortSignal): Promise<StoredCredential>;
  /** Compare-and-refresh of the access token after WeChat rejected `value`. */
  reportRejectedAccessToken(
    appId: string,
    value: string,
    errcode: number,
    signal: AbortSignal,
  ): Promise<void>;
  /** Every credential value of the app the broker knows (current and previous), for scrubbing. */
  knownValues(appId: string): string[];
}

const TICKET_TYPE: Readonly<Record<Exclude<CredentialKind, "access_token">, TicketType>> = {
  jsapi_ticket: "jsapi",
  wx_card_ticket: "wx_card",
};

/**
 * Fetches one credential from WeChat, every call through the upstream guard
 * (quota, circuit breaker, retries). Tickets are fetched with the app's
 * current access token; when WeChat says that token is stale (40001, 42001,
 * 40014), the token is compare-and-refreshed and the ticket fetch retried once.
 */
export class CredentialFetcher {
  constructor(
    private readonly client: WechatClient,
    private readonly accessTokens: AccessTokenProvider,
    private readonly guard: UpstreamGuard,
  ) {}

  /**
   * `retries`: retry WeChat's own faults inline (a caller is waiting);
   * scheduled refreshes have their own backoff and pass false. `purpose`
   * "report": a refresh caused by InvalidateToken, kept off the share of the
   * daily budget reserved for scheduled refreshes.
   */
  async fetch(
    app: AppConfig,
    kind: CredentialKind,
    signal: AbortSignal,
    retries: boolean,
    force = false,
    purpose: QuotaPurpose = "any",
  ): Promise<FetchedCredential> {
    const options = { retries, signal, purpose };
    if (kind === "access_token") {
      const credentials = {
        appid: app.appid,
        secret: app.secret.reveal(),
        known: this.accessTokens.knownValues(app.id),
      };
      if (force) {
        return this.guard.call(
          app.id,
          "/cgi-bin/stable_token",
          () => this.client.forceStableAccessToken(credentials, signal),
          { retries: false, signal, blocks: "force_refresh" },
        );
      }
      return app.tokenMode === "stable"
        ? this.guard.call(
            app.id,
            "/cgi-bin/stable_token",
            () => this.client.fetchStableAccessToken(credentials, signal),
            options,
          )
        : this.guard.call(
            app.id,
            "/cgi-bin/token",
            () => this.client.fetchAccessToken(credentials, signal),
            options,
          );
    }
    const type = TICKET_TYPE[kind];
    const ticket = (accessToken: string) =>
      this.guard.call(
        app.id,
        "/cgi-bin/ticket/getticket",
        () =>
          this.client.fetchTicket(accessToken, type, signal, {
            secrets: [app.secret.reveal()],
            credentials: this.accessTokens.knownValues(app.id),
          }),
        options,
      );
    const token = await this.accessTokens.getAccessToken(app.id, signal);
    try {
      return await ticket(token.value);
    } catch (err) {
      if (!(err instanceof UpstreamError) || err.category !== "token") throw err;
      await this.accessTokens.reportRejectedAccessToken(
        app.id,
        token.value,
        err.errcode ?? 0,
        signal,
      );
      const fresh = await this.accessTokens.getAccessToken(app.id, signal);
      return ticket(fresh.value);
    }
  }
}
