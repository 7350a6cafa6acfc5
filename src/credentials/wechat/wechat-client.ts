import { UpstreamError } from "../../core/upstream-error.js";
import { type ScrubValues, scrubErrmsg } from "../../shared/scrub-errmsg.js";
import { wechatErrcodes } from "./errcodes.js";

/** A credential as WeChat returned it. */
export interface FetchedCredential {
  value: string;
  /** Lifetime WeChat reported, in seconds (stable_token reports what is left). */
  expiresInSeconds: number;
}

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

export interface WechatClientOptions {
  /** e.g. https://api.weixin.qq.com, or the emulator's URL. */
  baseUrl: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** The HTTP client; injectable for tests. Defaults to the global fetch. */
  fetch?: typeof fetch;
}

export function createWechatClient(options: WechatClientOptions): WechatClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;

  /** `scrub`: the values WeChat's errmsg must not carry into the broker. */
  async function call(
    endpoint: string,
    init: RequestInit & { query: Record<string, string> },
    signal: AbortSignal | undefined,
    scrub: ScrubValues,
  ) {
    const url = new URL(base + endpoint);
    for (const [k, v] of Object.entries(init.query)) url.searchParams.set(k, v);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await doFetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body,
        signal: combined,
      });
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      // The cause may hold the URL (with the secret); keep only its code.
      throw new UpstreamError(
        endpoint,
        timeout.aborted
          ? { kind: "timeout", afterMs: options.timeoutMs }
          : { kind: "network", ...networkCodeOf(err) },
      );
    }
    if (response.status !== 200) {
      throw new UpstreamError(endpoint, { kind: "http", status: response.status });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new UpstreamError(endpoint, { kind: "malformed", problem: "is not JSON" });
    }
    if (typeof body !== "object" || body === null)
      throw new UpstreamError(endpoint, { kind: "malformed", problem: "is not a JSON object" });
    const record = body as Record<string, unknown>;
    const errcode = record.errcode;
    if (typeof errcode === "number" && errcode !== 0) {
      // The one place WeChat's text enters the broker: scrubbed here.
      const errmsg = typeof record.errmsg === "string" ? scrubErrmsg(record.errmsg, scrub) : "";
      throw new UpstreamError(
        endpoint,
        { kind: "errcode", errcode, errmsg },
        {
          category: wechatErrcodes.classify(errcode, endpoint),
          remedy: wechatErrcodes.remedy(errcode, endpoint),
        },
      );
    }
    return record;
  }

  function credential(
    endpoint: string,
    record: Record<string, unknown>,
    field: string,
  ): FetchedCredential {
    const value = record[field];
    const expiresIn = record.expires_in;
    if (typeof value !== "string" || value.length === 0) {
      throw new UpstreamError(endpoint, { kind: "malformed", problem: `has no ${field}` });
    }
    if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new UpstreamError(endpoint, {
        kind: "malformed",
        problem: "has no positive expires_in",
      });
    }
    return { value, expiresInSeconds: expiresIn };
  }

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

function networkCodeOf(err: unknown): { code?: string } {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === "string" ? { code: cause.code } : {};
}
