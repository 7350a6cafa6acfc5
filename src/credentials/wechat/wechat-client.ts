import type { ScrubValues } from "../../shared/scrub-errmsg.js";
import { wechatErrcodes } from "./errcodes.js";
import {
  createWechatHttp,
  type FetchedCredential,
  type WechatClientOptions,
} from "./wechat-http.js";

export type { FetchedCredential, WechatClientOptions };

export interface AppCredentials {
  appid: string;
  secret: string;
  /**
   * The app's credential values the broker knows (current and previous):
   * scrubbed, like the secret, from WeChat's errmsg.
   */
  known?: readonly string[];
}

export type TicketType = "jsapi" | "wx_card";

/** The calls the broker makes to WeChat. One method per credential endpoint. */
export interface WechatClient {
  /** GET /cgi-bin/token: always issues a new token and retires the previous one. */
  fetchAccessToken(app: AppCredentials, signal?: AbortSignal): Promise<FetchedCredential>;
  /**
   * POST /cgi-bin/stable_token in normal mode (force_refresh=false): returns
   * the current stable token, rotating only in its last 5 minutes. Force mode
   * is deliberately not offered here: it is a leak response, never automatic.
   */
  fetchStableAccessToken(app: AppCredentials, signal?: AbortSignal): Promise<FetchedCredential>;
  /**
   * POST /cgi-bin/stable_token with force_refresh=true: WeChat issues a new
   * stable token at once. Only for an operator's explicit leak response.
   */
  forceStableAccessToken(app: AppCredentials, signal?: AbortSignal): Promise<FetchedCredential>;
  /** POST /cgi-bin/clear_quota/v2: resets all of the app's daily counters (10 a month). */
  clearQuota(app: AppCredentials, signal?: AbortSignal): Promise<void>;
  /**
   * GET /cgi-bin/ticket/getticket with the app's current access token;
   * `scrub`: the app's secret and known credential values (as in AppCredentials).
   */
  fetchTicket(
    accessToken: string,
    type: TicketType,
    signal?: AbortSignal,
    scrub?: ScrubValues,
  ): Promise<FetchedCredential>;
}

export function createWechatClient(options: WechatClientOptions): WechatClient {
  const { call, credential } = createWechatHttp(options, wechatErrcodes);

  async function stable(app: AppCredentials, force: boolean, signal?: AbortSignal) {
    const endpoint = "/cgi-bin/stable_token";
    const record = await call(
      endpoint,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          grant_type: "client_credential",
          appid: app.appid,
          secret: app.secret,
          force_refresh: force,
        }),
        query: {},
      },
      signal,
      scrubOf(app),
    );
    return credential(endpoint, record, "access_token");
  }

  return {
    async fetchAccessToken(app, signal) {
      const endpoint = "/cgi-bin/token";
      const record = await call(
        endpoint,
        {
          method: "GET",
          query: { grant_type: "client_credential", appid: app.appid, secret: app.secret },
        },
        signal,
        scrubOf(app),
      );
      return credential(endpoint, record, "access_token");
    },
    fetchStableAccessToken(app, signal) {
      return stable(app, false, signal);
    },
    forceStableAccessToken(app, signal) {
      return stable(app, true, signal);
    },
    async clearQuota(app, signal) {
      // WeChat reads appid and appsecret from the URL only ("URL 参数,非 Body 参数").
      await call(
        "/cgi-bin/clear_quota/v2",
        { method: "POST", query: { appid: app.appid, appsecret: app.secret } },
        signal,
        scrubOf(app),
      );
    },
    async fetchTicket(accessToken, type, signal, scrub) {
      const endpoint = "/cgi-bin/ticket/getticket";
      const record = await call(
        endpoint,
        { method: "GET", query: { access_token: accessToken, type } },
        signal,
        {
          secrets: scrub?.secrets ?? [],
          credentials: [accessToken, ...(scrub?.credentials ?? [])],
        },
      );
      return credential(endpoint, record, "ticket");
    },
  };
}

function scrubOf(app: AppCredentials): ScrubValues {
  return { secrets: [app.secret], credentials: app.known ?? [] };
}
