import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../shared/logger.js";
import type { Secret } from "../shared/secret.js";

export interface TracingSettings {
  /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
  endpoint: string;
  /** Sent with every export (an API key for a hosted collector): from env or a file. */
  headers: Readonly<Record<string, Secret>>;
  serviceName: string;
  /** Share of new traces recorded (a caller's sampled traceparent is always followed). */
  sampleRatio: number;
  /** How often spans are exported in a batch. */
  exportIntervalMs: number;
}

export interface Tracing {
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

let installed: BasicTracerProvider | undefined;

/**
 * Installs OpenTelemetry's SDK for the broker's spans (src/shared/spans.ts):
 * a tracer provider exporting over OTLP/HTTP, W3C trace context, and the
 * AsyncLocalStorage context manager so a refresh's spans nest across awaits.
 * Global, as OpenTelemetry is: one provider per process; a second broker in
 * the same process with tracing configured shares the first one's.
 */
export function startTracing(s: TracingSettings, logger: Logger): Tracing {
  if (installed) {
    logger.warn(
      "tracing is already installed in this process; this broker's spans go to the same exporter",
    );
    return { shutdown: async () => {} };
  }
  const exporter = new OTLPTraceExporter({
    url: s.endpoint,
    headers: Object.fromEntries(Object.entries(s.headers).map(([k, v]) => [k, v.reveal()])),
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": s.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(s.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { scheduledDelayMillis: s.exportIntervalMs }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  installed = provider;
  logger.info(
    { endpoint: new URL(s.endpoint).origin, sampleRatio: s.sampleRatio },
    "tracing on: exporting spans over OTLP/HTTP",
  );
  return {
    async shutdown() {
      if (installed !== provider) return;
      await provider
        .shutdown()
        .catch((err: unknown) =>
          logger.warn({ err: (err as Error).message }, "tracing: final export failed"),
        );
      trace.disable();
      context.disable();
      propagation.disable();
      installed = undefined;
    },
  };
}
