import { z } from "zod";
import { num, section, text } from "../../shared/schema.js";
import { appSecret, type ConfigEnvironment } from "./secret.js";

/**
 * OpenTelemetry traces, off unless this section is present: spans for every
 * RPC and every refresh (lock wait, WeChat call, store write), exported over
 * OTLP/HTTP. Header values (a hosted collector's API key) come from env or a
 * file, never inline.
 */
export function tracingSchema(environment: ConfigEnvironment) {
  return z.optional(
    section({
      /** The collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces. */
      endpoint: text("an http(s) URL").refine((u) => {
        if (!URL.canParse(u)) return false;
        const url = new URL(u);
        return (
          ["http:", "https:"].includes(url.protocol) && url.username === "" && url.password === ""
        );
      }, "expected an http(s) URL without credentials (put them in headers)"),
      headers: z.preprocess((v) => v ?? {}, z.record(z.string(), appSecret(environment))),
      serviceName: text().prefault("wechat-token-broker"),
      /** Share of traces started here that are recorded; a caller's sampled traceparent is always followed. */
      sampleRatio: num(0, 1).prefault(1),
      exportIntervalSeconds: num(0.1, 60).prefault(5),
    }).transform(({ exportIntervalSeconds, ...t }) => ({
      ...t,
      exportIntervalMs: Math.round(exportIntervalSeconds * 1000),
    })),
  );
}
