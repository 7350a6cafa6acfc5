/**
 * The grants benchmark's load generator, in a process of its own (pinned to
 * the other core than the broker): GetToken over gRPC at a fixed number of
 * calls in flight, for users round-robin or for the app token, on the bare
 * h2c client of lib/h2-raw-client.ts. h2load sends one fixed body, so it
 * cannot vary the subject; both targets go through this same client so
 * their ratio compares the broker, not two load generators. GRANTS_PORT
 * names the broker's gRPC port.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  GetTokenRequestSchema,
  GetTokenResponseSchema,
  TokenKind,
} from "../gen/tokenbroker/v1/token_service_pb.js";
import { grpcFrame } from "./fanout-h2.js";
import { GRANTS_APP, openidOf, userGrant } from "./grant-records.js";
import {
  type ChildMessage,
  GET_TOKEN_PATH,
  type LoadResult,
  type Reply,
  type Request,
  serveRequests,
} from "./grants-protocol.js";
import { type NextCall, runConnection } from "./lib/h2-raw-client.js";

/** 4 connections × 32 streams: the hot path's 128 calls in flight. */
const SESSIONS = 4;
const STREAMS = 32;
/** Fill: every CHECK_EVERY-th response is decoded and its value compared with the grant written. */
const CHECK_EVERY = 100;

const port = Number(process.env.GRANTS_PORT);

function userRequest(i: number): Buffer {
  return grpcFrame(
    toBinary(
      GetTokenRequestSchema,
      create(GetTokenRequestSchema, {
        appId: GRANTS_APP.id,
        kind: TokenKind.USER_ACCESS_TOKEN,
        subject: openidOf(i),
      }),
    ),
  );
}

const appRequest = grpcFrame(
  toBinary(
    GetTokenRequestSchema,
    create(GetTokenRequestSchema, { appId: GRANTS_APP.id, kind: TokenKind.ACCESS_TOKEN }),
  ),
);

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/**
 * Keeps `SESSIONS × STREAMS` calls in flight, each taking the next request
 * from `next` until it returns undefined; latencies and counts of the calls
 * started from `measureFrom` (ms, performance.now) on.
 */
async function drive(next: () => NextCall | undefined, measureFrom: number): Promise<LoadResult> {
  const runs = await Promise.all(
    Array.from({ length: SESSIONS }, () =>
      runConnection(port, GET_TOKEN_PATH, STREAMS, next, measureFrom),
    ),
  );
  const seconds = (performance.now() - measureFrom) / 1000;
  const sorted = Float64Array.from(runs.flatMap((r) => r.latenciesMs)).sort();
  return {
    calls: sorted.length,
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
    seconds,
    reqPerSec: sorted.length / seconds,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
  };
}

/** One GetToken per user in [from, to), a sample checked against the grant the parent wrote. */
async function fill(from: number, to: number): Promise<LoadResult> {
  let i = from;
  let checked = 0;
  let mismatched = 0;
  const started = performance.now();
  const result = await drive(() => {
    if (i >= to) return undefined;
    const user = i++;
    const body = userRequest(user);
    if ((user - from) % CHECK_EVERY !== 0) return { body };
    return {
      body,
      check: (response) => {
        checked++;
        const token = fromBinary(GetTokenResponseSchema, response).token;
        if (token?.value !== userGrant(user, 0).value) mismatched++;
      },
    };
  }, started);
  return { ...result, checked, mismatched };
}

async function load(request: Extract<Request, { type: "load" }>): Promise<LoadResult> {
  const bodies =
    request.target === "app"
      ? [appRequest]
      : Array.from({ length: request.to - request.from }, (_, k) => userRequest(request.from + k));
  const started = performance.now();
  const measureFrom = started + request.warmupSeconds * 1000;
  const end = measureFrom + request.seconds * 1000;
  let k = 0;
  return drive(() => {
    if (performance.now() >= end) return undefined;
    const body = bodies[k++ % bodies.length];
    return body ? { body } : undefined;
  }, measureFrom);
}

serveRequests(
  async (request): Promise<Reply> => {
    if (request.type === "fill")
      return { type: "result", result: await fill(request.from, request.to) };
    if (request.type === "load") return { type: "result", result: await load(request) };
    throw new Error(`the load child does not answer ${request.type}`);
  },
  async () => {},
);
process.send?.({ type: "ready", port } satisfies ChildMessage);
