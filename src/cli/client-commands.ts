import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import {
  InvalidateOutcome,
  type Token,
  type TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { type HeldToken, openTokenSource } from "../../packages/token-source/src/index.js";
import { KINDS } from "../credentials/index.js";
import { brokerTransport, type ConnectionOptions } from "./connection.js";

export interface ClientOptions extends ConnectionOptions {
  app: string;
  kind: string;
  /** The user's openid for a user's kind (user_access_token); empty for app-level kinds. */
  subject: string;
  /** Print the credential itself; by default only its fingerprint. */
  reveal: boolean;
  /** Per-call deadline. */
  timeoutMs: number;
}

function connect(o: ClientOptions) {
  const spec = KINDS.get(o.kind);
  if (spec === undefined)
    throw new Error(`--kind must be one of ${KINDS.names().join(", ")}; got '${o.kind}'`);
  return {
    client: createClient(TokenService, brokerTransport(o)),
    kind: spec.protoNumber as TokenKind,
    subject: o.subject,
  };
}

/** One line of JSON per credential: what an operator needs, the value only on request. */
function describe(
  token: Token | undefined,
  reveal: boolean,
  extra: Record<string, unknown> = {},
): string {
  if (!token) return JSON.stringify({ error: "response carried no token", ...extra });
  return JSON.stringify({
    app: token.appId,
    kind: KINDS.byProto(token.kind)?.name,
    ...(token.subject ? { subject: token.subject } : {}),
    version: token.version.toString(),
    fingerprint: token.fingerprint,
    expiresAt: token.expiresAt ? timestampDate(token.expiresAt).toISOString() : undefined,
    expiresIn: Number(token.expiresIn),
    fetchedAt: token.fetchedAt ? timestampDate(token.fetchedAt).toISOString() : undefined,
    ...(token.refreshExpiresAt
      ? { refreshExpiresAt: timestampDate(token.refreshExpiresAt).toISOString() }
      : {}),
    ...(reveal ? { value: token.value } : {}),
    ...extra,
  });
}

export async function getCommand(o: ClientOptions): Promise<void> {
  const { client, kind, subject } = connect(o);
  const res = await client.getToken({ appId: o.app, kind, subject }, { timeoutMs: o.timeoutMs });
  console.log(describe(res.token, o.reveal));
}

export async function invalidateCommand(
  o: ClientOptions & { value: string; errcode: number },
): Promise<void> {
  const { client, kind, subject } = connect(o);
  const res = await client.invalidateToken(
    { appId: o.app, kind, subject, rejectedValue: o.value, errcode: o.errcode },
    { timeoutMs: o.timeoutMs },
  );
  console.log(
    describe(res.token, o.reveal, {
      refreshed: res.refreshed,
      outcome: InvalidateOutcome[res.outcome],
    }),
  );
}

/**
 * Prints the current version, then every new one, until interrupted: a
 * TokenSource (the client library) follows the broker, reconnecting (to the
 * replicas behind --addr) and polling when it cannot stream; what it rides
 * out goes to stderr. Fails (exit 1, or 3 for REAUTHORIZE) only when the broker
 * refuses the request before a first token.
 */
export async function watchCommand(o: ClientOptions): Promise<void> {
  const spec = KINDS.get(o.kind);
  if (spec === undefined)
    throw new Error(`--kind must be one of ${KINDS.names().join(", ")}; got '${o.kind}'`);
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  const print = (t: HeldToken) => console.log(describeHeld(t, o, spec.name));
  const source = openTokenSource({
    address: o.addr,
    appId: o.app,
    kind: spec.protoNumber as TokenKind,
    ...(o.subject ? { subject: o.subject } : {}),
    credentials: {
      ...(o.apiKey ? { apiKey: o.apiKey } : {}),
      ...(o.tls
        ? {
            tls: {
              ...(o.ca ? { ca: o.ca } : {}),
              ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
            },
          }
        : {}),
    },
    // An operator watching is not a client applying the token.
    ack: false,
    signal: abort.signal,
    onError: (err, during) => process.stderr.write(`token-broker: ${during}: ${err.message}\n`),
  });
  try {
    await source.ready;
  } catch (err) {
    if (abort.signal.aborted) return;
    throw err;
  }
  const first = source.current();
  if (first) print(first);
  source.onUpdate(print);
  // The library's timers never keep a process alive; between two streams
  // nothing else would, and the command must run until interrupted.
  const keepAlive = setInterval(() => {}, 3_600_000);
  await new Promise<void>((resolve) => {
    if (abort.signal.aborted) resolve();
    abort.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  clearInterval(keepAlive);
  await source.close();
}

/** One line of JSON per version, like `describe` (times from the source's view). */
function describeHeld(t: HeldToken, o: ClientOptions, kind: string): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  return JSON.stringify({
    app: o.app,
    kind,
    ...(o.subject ? { subject: o.subject } : {}),
    version: t.version.toString(),
    fingerprint: t.fingerprint,
    expiresAt: iso(t.expiresAt),
    expiresIn: Math.max(0, Math.floor((t.expiresAt - Date.now()) / 1000)),
    fetchedAt: iso(t.fetchedAt),
    refreshAfter: iso(t.refreshAfter),
    ...(t.refreshExpiresAt === undefined ? {} : { refreshExpiresAt: iso(t.refreshExpiresAt) }),
    ...(o.reveal ? { value: t.value } : {}),
    ...(t.previousValidUntil === undefined
      ? {}
      : { previousValidUntil: iso(t.previousValidUntil) }),
  });
}
