import type { ScrubValues } from "../../shared/scrub-errmsg.js";
import {
  createWechatHttp,
  type FetchedCredential,
  type WechatClientOptions,
} from "../wechat/wechat-http.js";
import { wecomErrcodes } from "./errcodes.js";

export const GETTOKEN_ENDPOINT = "/cgi-bin/gettoken";
export const CORP_TICKET_ENDPOINT = "/cgi-bin/get_jsapi_ticket";
export const AGENT_TICKET_ENDPOINT = "/cgi-bin/ticket/get";

/** The calls the broker makes to WeCom, on WeCom's own host (upstream.wecomBaseUrl). */
export interface WecomClient {
  /** GET /cgi-bin/gettoken: the app's token (the same one within its validity). */
  fetchToken(
    app: { corpid: string; secret: string; known?: readonly string[] },
    signal?: AbortSignal,
  ): Promise<FetchedCredential>;
  /** GET /cgi-bin/get_jsapi_ticket (the corp's JS-SDK ticket) or /cgi-bin/ticket/get?type=agent_config (the app's). */
  fetchTicket(
    accessToken: string,
    which: "corp" | "agent",
    signal?: AbortSignal,
    scrub?: ScrubValues,
  ): Promise<FetchedCredential>;
}

export function createWecomClient(options: WechatClientOptions): WecomClient {
  const { call, credential } = createWechatHttp(options, wecomErrcodes);
  return {
    async fetchToken(app, signal) {
      const record = await call(
        GETTOKEN_ENDPOINT,
        { method: "GET", query: { corpid: app.corpid, corpsecret: app.secret } },
        signal,
        { secrets: [app.secret], credentials: app.known ?? [] },
      );
      return credential(GETTOKEN_ENDPOINT, record, "access_token");
    },
    async fetchTicket(accessToken, which, signal, scrub) {
      const endpoint = which === "corp" ? CORP_TICKET_ENDPOINT : AGENT_TICKET_ENDPOINT;
      const query: Record<string, string> =
        which === "corp"
          ? { access_token: accessToken }
          : { access_token: accessToken, type: "agent_config" };
      const record = await call(endpoint, { method: "GET", query }, signal, {
        secrets: scrub?.secrets ?? [],
        credentials: [accessToken, ...(scrub?.credentials ?? [])],
      });
      return credential(endpoint, record, "ticket");
    },
  };
}
