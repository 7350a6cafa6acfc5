import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  InvalidateOutcome,
  type Token,
  type TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
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

/** Prints every version until interrupted; exits non-zero if the stream fails. */
export async function watchCommand(o: ClientOptions): Promise<void> {
  const { client, kind, subject } = connect(o);
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  try {
    const stream = client.watchToken({ appId: o.app, kind, subject }, { signal: abort.signal });
    for await (const res of stream) {
      const previous = res.previousValidUntil
        ? timestampDate(res.previousValidUntil).toISOString()
        : undefined;
      console.log(describe(res.token, o.reveal, previous ? { previousValidUntil: previous } : {}));
    }
  } catch (err) {
    if (abort.signal.aborted && ConnectError.from(err).code === Code.Canceled) return;
    throw err;
  }
}
