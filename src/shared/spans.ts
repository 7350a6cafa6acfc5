import {
  type Attributes,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/**
 * The broker's spans, through the OpenTelemetry API only: with no tracer
 * provider installed (tracing off, the default) every call is a no-op that
 * costs a function call. src/observability/tracing.ts installs the SDK when
 * `tracing` is configured. Attributes carry ids, kinds, endpoints, errcodes
 * and versions: never a secret, a token or a code.
 */
export const TRACER_NAME = "wechat-token-broker";

function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Runs `fn` in a span that is the active one meanwhile (children nest under it). */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A span ended by the caller (e.g. when a lock is acquired, not when a block returns). */
export function startSpan(name: string, attributes: Attributes): Span {
  return tracer().startSpan(name, { attributes });
}

/** Marks `span` failed with the error's name and stable code, not its message (which may quote WeChat). */
export function failSpan(span: Span, err: unknown): void {
  const e = err as { name?: unknown; code?: unknown; errcode?: unknown } | undefined;
  const name = typeof e?.name === "string" ? e.name : "Error";
  const code =
    typeof e?.code === "string" || typeof e?.code === "number" ? String(e.code) : undefined;
  span.setAttribute("error.type", code ?? name);
  if (typeof e?.errcode === "number") span.setAttribute("wechat.errcode", e.errcode);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code ?? name });
}

export { SpanKind };
