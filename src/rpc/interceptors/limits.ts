import { Code, type Interceptor } from "@connectrpc/connect";
import type { RefusalLog } from "../../security/refusal-log.js";
import type { Clock } from "../../shared/clock.js";
import { TokenBucket } from "../../shared/token-bucket.js";
import { onStreamEnd } from "./outcome.js";
import { ruleOf } from "./rules.js";
import { type Caller, callerOf, refuse } from "./scene.js";

/**
 * Per-client limits (none for the anonymous client): GetToken takes a token
 * from the client's bucket, InvalidateToken from a separate, smaller one (a
 * report can cause a WeChat call), and WatchToken holds one of its stream
 * slots from its first read until the stream ends however it ends — else
 * RESOURCE_EXHAUSTED, written to `refusals`.
 */
export function limits(clock: Clock, refusals: RefusalLog): Interceptor {
  const buckets = new Map<string, TokenBucket>();
  const reportBuckets = new Map<string, TokenBucket>();
  const streams = new Map<string, number>();

  const takeToken = (caller: Caller, which: "rate" | "reports"): void => {
    const { client } = caller;
    if (client.limits === undefined) return;
    const { ratePerSecond, burst } =
      which === "rate"
        ? client.limits
        : { ratePerSecond: client.limits.reportRatePerSecond, burst: client.limits.reportBurst };
    const pool = which === "rate" ? buckets : reportBuckets;
    let bucket = pool.get(client.id);
    if (!bucket) {
      bucket = new TokenBucket(ratePerSecond, burst, clock.now());
      pool.set(client.id, bucket);
    }
    const waitMs = bucket.take(clock.now());
    if (waitMs > 0) {
      throw refuse(
        refusals,
        "rate_limited",
        Code.ResourceExhausted,
        `${which === "rate" ? "rate limit" : "InvalidateToken rate limit"} of ${ratePerSecond}/s exceeded for client '${client.id}'; retry after ${waitMs} ms`,
        caller,
        client.id,
      );
    }
  };

  /** Takes one of the client's stream slots; the returned function gives it back (once). */
  const openStream = (caller: Caller): (() => void) => {
    const { client } = caller;
    if (client.limits === undefined) return () => {};
    const max = client.limits.maxWatchStreams;
    const open = streams.get(client.id) ?? 0;
    if (open >= max) {
      throw refuse(
        refusals,
        "stream_limited",
        Code.ResourceExhausted,
        `client '${client.id}' is at its limit of ${max} concurrent ${caller.method} streams; close one before opening another`,
        caller,
        client.id,
      );
    }
    streams.set(client.id, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (streams.get(client.id) ?? 1) - 1;
      if (left > 0) streams.set(client.id, left);
      else streams.delete(client.id);
    };
  };

  return (next) => (req) => {
    const limit = ruleOf(req.method).limit;
    if (limit === undefined) return next(req);
    let caller: Caller;
    try {
      caller = callerOf(req);
      if (limit !== "streams") takeToken(caller, limit);
    } catch (err) {
      return Promise.reject(err);
    }
    if (limit !== "streams") return next(req);
    // The slot is taken when the stream starts, so a stream nobody reads
    // (its call ended first) never holds one.
    return next(req).then((res) => (res.stream ? onStreamEnd(res, () => openStream(caller)) : res));
  };
}
