import type { Clock } from "./clock.js";
import { TokenKind } from "./gen/tokenbroker/v1/token_service_pb.js";

/** Credential kinds by the names the broker's config and CLI use. */
export type TokenKindName =
  | "access_token"
  | "jsapi_ticket"
  | "wx_card_ticket"
  | "wecom_agent_ticket"
  | "user_access_token";

const KIND_BY_NAME: Readonly<Record<TokenKindName, TokenKind>> = {
  access_token: TokenKind.ACCESS_TOKEN,
  jsapi_ticket: TokenKind.JSAPI_TICKET,
  wx_card_ticket: TokenKind.WX_CARD_TICKET,
  wecom_agent_ticket: TokenKind.WECOM_AGENT_TICKET,
  user_access_token: TokenKind.USER_ACCESS_TOKEN,
};

/** How the source authenticates to the broker and protects the connection. */
export interface TokenSourceCredentials {
  /** Sent as `authorization: Bearer <key>`; read it from a file or the environment, never a literal. */
  apiKey?: string;
  /**
   * Connect over TLS: `true` verifies the broker against the system's CAs;
   * an object can name the CA bundle and a client certificate (mutual TLS).
   * Absent: plaintext (loopback or a trusted network only).
   */
  tls?: boolean | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

/** Timings; the defaults suit production, tests shorten them. */
export interface TokenSourceTuning {
  /** A stream that sends nothing this long after opening is given up (a stalled replica). Default 10 s. */
  firstMessageTimeoutMs?: number;
  /** HTTP/2 PINGs on a connection with an open stream; one unanswered for `pingTimeoutMs` drops it. Defaults 15 s and 10 s. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Backoff between failed attempts (streams, polls, acks): first and largest. Defaults 250 ms and 30 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** With a stream open, how long after `refresh_after` to check with GetToken if no new version came. Default 3 s. */
  streamGraceMs?: number;
  /** After streaming is refused (no permission, not implemented), when to try it again. Default 5 min. */
  streamRetryMs?: number;
  /** Deadline of each unary call. Default 5 s. */
  callTimeoutMs?: number;
}

export interface TokenSourceOptions {
  /** The broker's gRPC listener, host:port; several (replicas) are tried in turn. */
  address: string | readonly string[];
  /** The broker's id of the app. */
  appId: string;
  kind: TokenKindName | TokenKind;
  /** For per-user kinds: the user's openid. */
  subject?: string;
  credentials: TokenSourceCredentials;
  /** Report the version in use to the broker (AckToken). Default true. */
  ack?: boolean;
  /** This process among the client's instances (AckToken); default a random id. */
  instance?: string;
  /** Errcodes `withToken` treats as "this token is stale". Default 40001, 42001, 40014. */
  staleErrcodes?: readonly number[];
  /** Told of every failure the source rides out (reconnects, failed polls); never of a token. */
  onError?: (error: Error, during: string) => void;
  /** Aborting it closes the source (and rejects createTokenSource if no token came yet). */
  signal?: AbortSignal;
  tuning?: TokenSourceTuning;
  /** Tests: the time source. */
  clock?: Clock;
}

export const DEFAULT_TUNING: Required<TokenSourceTuning> = Object.freeze({
  firstMessageTimeoutMs: 10_000,
  pingIntervalMs: 15_000,
  pingTimeoutMs: 10_000,
  backoffInitialMs: 250,
  backoffMaxMs: 30_000,
  streamGraceMs: 3_000,
  streamRetryMs: 5 * 60_000,
  callTimeoutMs: 5_000,
});

export const DEFAULT_STALE_ERRCODES: readonly number[] = Object.freeze([40001, 42001, 40014]);

export function kindOf(kind: TokenKindName | TokenKind): TokenKind {
  if (typeof kind === "number") return kind;
  const found = KIND_BY_NAME[kind];
  if (found === undefined)
    throw new TypeError(`unknown kind '${kind}': one of ${Object.keys(KIND_BY_NAME).join(", ")}`);
  return found;
}

export function addressesOf(address: string | readonly string[]): string[] {
  const list = typeof address === "string" ? [address] : [...address];
  if (list.length === 0 || list.some((a) => !/^[^\s/]+:\d{1,5}$/.test(a)))
    throw new TypeError(
      `address must be host:port (or a list of them), got ${JSON.stringify(address)}`,
    );
  return list;
}
