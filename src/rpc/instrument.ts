import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Clock } from "../shared/clock.js";
import { observeStream } from "../shared/observe-stream.js";

/** What the wrapper reports; BrokerMetrics.rpcHandled fits. */
export type RpcObserver = (service: string, method: string, code: string, seconds: number) => void;

/**
 * Wraps every method of a service implementation so each call reports its
 * status code and duration, whichever listener served it. A stream reports
 * when it ends (its duration is the stream's life).
 */
export function instrument<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  observe: RpcObserver,
  clock: Clock,
): ServiceImpl<S> {
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const name = method.localName as keyof ServiceImpl<S>;
    const fn = impl[name] as unknown as (req: unknown, ctx: HandlerContext) => unknown;
    const report = (started: number, err: unknown) =>
      observe(service.typeName, method.name, codeName(err), (clock.now() - started) / 1000);
    if (method.methodKind === "unary" || method.methodKind === "client_streaming") {
      wrapped[name as string] = async (req: unknown, ctx: HandlerContext) => {
        const started = clock.now();
        try {
          const res = await fn(req, ctx);
          report(started, undefined);
          return res;
        } catch (err) {
          report(started, err);
          throw err;
        }
      };
    } else {
      wrapped[name as string] = (req: unknown, ctx: HandlerContext) =>
        observeStream(() => {
          const started = clock.now();
          return {
            source: fn(req, ctx) as AsyncIterable<unknown>,
            end: (outcome) => report(started, outcome),
          };
        }, CANCELED);
    }
  }
  return wrapped as ServiceImpl<S>;
}

const CANCELED = new ConnectError("stream ended by the client", Code.Canceled);

function codeName(err: unknown): string {
  if (err === undefined) return "ok";
  const code = err instanceof ConnectError ? err.code : Code.Unknown;
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
