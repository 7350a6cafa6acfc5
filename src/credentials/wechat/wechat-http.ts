import type { ErrcodeTable } from "../../core/kind.js";
import { UpstreamError } from "../../core/upstream-error.js";
import { type ScrubValues, scrubErrmsg } from "../../shared/scrub-errmsg.js";

/** A credential as WeChat returned it. */
export interface FetchedCredential {
  value: string;
  /** Lifetime WeChat reported, in seconds (stable_token reports what is left). */
  expiresInSeconds: number;
}

export interface WechatClientOptions {
  /** e.g. https://api.weixin.qq.com, or the emulator's URL. */
  baseUrl: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** The HTTP client; injectable for tests. Defaults to the global fetch. */
  fetch?: typeof fetch;
}

export type WechatRequest = RequestInit & { query: Record<string, string> };

/** One WeChat API call and the reading of its answer, shared by the family's clients. */
export interface WechatHttp {
  /**
   * Calls `endpoint` and returns WeChat's JSON object, or throws an
   * UpstreamError classified by `errcodes`. `scrub`: the values WeChat's
   * errmsg must not carry into the broker.
   */
  call(
    endpoint: string,
    init: WechatRequest,
    signal: AbortSignal | undefined,
    scrub: ScrubValues,
  ): Promise<Record<string, unknown>>;
  /** `field` and `expires_in` of a successful answer, or a "malformed" UpstreamError. */
  credential(endpoint: string, record: Record<string, unknown>, field: string): FetchedCredential;
}

export function createWechatHttp(options: WechatClientOptions, errcodes: ErrcodeTable): WechatHttp {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;

  /** `scrub`: the values WeChat's errmsg must not carry into the broker. */
  async function call(
    endpoint: string,
    init: WechatRequest,
    signal: AbortSignal | undefined,
    scrub: ScrubValues,
  ): Promise<Record<string, unknown>> {
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
          category: errcodes.classify(errcode, endpoint),
          remedy: errcodes.remedy(errcode, endpoint, errmsg),
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

  return { call, credential };
}

function networkCodeOf(err: unknown): { code?: string } {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === "string" ? { code: cause.code } : {};
}
