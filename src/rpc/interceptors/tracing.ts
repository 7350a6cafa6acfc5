import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { failSpan, TRACER_NAME } from "../../shared/spans.js";
import { codeName, onStreamEnd } from "./outcome.js";

const headerGetter = {
  get: (h: Headers, key: string) => h.get(key) ?? undefined,
  keys: (h: Headers) => [...h.keys()],
};

/**
 * One server span per call, continuing the caller's trace (W3C traceparent)
 * and active while the handler runs, so a refresh it causes nests under it.
 * A stream's span lasts as long as the stream. Only in the chain when
 * tracing is on: it reads the request headers, which the gRPC port builds
 * only on demand.
 */
export function tracing(): Interceptor {
  return (next) => (req) => {
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    const span = trace.getTracer(TRACER_NAME).startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": "grpc",
          "rpc.service": req.service.typeName,
          "rpc.method": req.method.name,
        },
      },
      parent,
    );
    const end = (outcome: unknown) => {
      span.setAttribute("rpc.grpc.status", codeName(outcome));
      if (outcome !== undefined) failSpan(span, outcome);
      span.end();
    };
    return context
      .with(trace.setSpan(parent, span), () => next(req))
      .then(
        (res) => {
          if (res.stream) return onStreamEnd(res, () => end);
          end(undefined);
          return res;
        },
        (err: unknown) => {
          end(err);
          throw err;
        },
      );
  };
}
