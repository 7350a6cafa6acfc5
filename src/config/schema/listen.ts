import { z } from "zod";
import { list, num, oneOf, section, text } from "../../shared/schema.js";

/** host:port, with IPv6 hosts in brackets. */
export function address() {
  return text().transform((v, ctx) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
    const port = m ? Number(m[3]) : Number.NaN;
    if (!m || port > 65535) {
      ctx.addIssue({
        code: "custom",
        message: `expected host:port (e.g. 127.0.0.1:50051 or [::1]:50051), got '${v}'`,
      });
      return z.NEVER;
    }
    return { host: m[1] ?? m[2] ?? "", port };
  });
}

export type ListenAddress = z.output<ReturnType<typeof address>>;

/** The RPC listeners and the limits both of them apply. */
export function listenSchema() {
  return section({
    grpc: address().prefault("127.0.0.1:50051"),
    connect: address().prefault("127.0.0.1:8080"),
    /** Connections without a call for this long are closed. */
    idleTimeoutMs: num(1000, 3_600_000).prefault(60_000),
    /** HTTP/2 streams one connection may have open at once, on both listeners. */
    maxConcurrentStreams: num(1, 10_000).prefault(100),
    /** A request not fully received in this time is answered DEADLINE_EXCEEDED / reset. */
    requestTimeoutMs: num(100, 600_000).prefault(10_000),
    /** Health/Watch streams open at once: in total, and from one peer address. */
    maxHealthWatches: num(1, 1_000_000).prefault(1000),
    maxHealthWatchesPerPeer: num(1, 100_000).prefault(10),
    /** Server reflection: auto = only when every listener is on loopback. */
    reflection: oneOf(["auto", "on", "off"]).prefault("auto"),
  });
}

/** Browser origins the Connect listener answers (CORS). */
export function corsSchema() {
  const error = (iss: { input?: unknown }) =>
    `expected an origin like https://example.com or "*", got ${JSON.stringify(iss.input)}`;
  const origin = z
    .string({ error })
    .refine((v) => v === "*" || /^https?:\/\/[^/]+$/.test(v), { error });
  return section({ allowedOrigins: list(origin).prefault([]) });
}
