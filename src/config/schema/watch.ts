import { num, section } from "../../shared/schema.js";

/**
 * WatchToken streams and what clients report back (AckToken); seconds in the
 * YAML, ms inside.
 */
export function watchSchema() {
  return section({
    /**
     * A stream ends with UNAVAILABLE after about this long, give or take
     * `maxStreamAgeJitter` of it, and its client reconnects: long-lived
     * streams spread over replicas added since (gRPC's MAX_CONNECTION_AGE).
     */
    maxStreamAgeSeconds: num(1, 7 * 86_400).prefault(1800),
    maxStreamAgeJitter: num(0, 0.5).prefault(0.1),
    /**
     * Clients acknowledge the version they use again within this long; one
     * silent for three times as long is forgotten (a stopped process).
     */
    ackRenewSeconds: num(5, 3600).prefault(60),
    /**
     * Alert this long before a replaced credential stops working while
     * clients still acknowledge it (the overlap after a rotation is 300 s).
     */
    supersededAlertLeadSeconds: num(0, 3600).prefault(120),
  }).transform((w) => ({
    maxStreamAgeMs: w.maxStreamAgeSeconds * 1000,
    maxStreamAgeJitter: w.maxStreamAgeJitter,
    ackRenewMs: w.ackRenewSeconds * 1000,
    supersededAlertLeadMs: w.supersededAlertLeadSeconds * 1000,
  }));
}
