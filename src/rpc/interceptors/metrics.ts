import type { Interceptor } from "@connectrpc/connect";
import type { Clock } from "../../shared/clock.js";
import { codeName, onStreamEnd } from "./outcome.js";

/** What the metrics interceptor reports; BrokerMetrics.rpcHandled fits. */
export type RpcObserver = (service: string, method: string, code: string, seconds: number) => void;

/**
 * Reports every call's status code and duration, whichever listener served
 * it. A stream reports when it ends (its duration is the stream's life).
 */
export function metrics(observe: RpcObserver, clock: Clock): Interceptor {
  return (next) => (req) => {
    const started = clock.now();
    const report = (err: unknown) =>
      observe(req.service.typeName, req.method.name, codeName(err), (clock.now() - started) / 1000);
    return next(req).then(
      (res) => {
        if (res.stream) return onStreamEnd(res, () => report);
        report(undefined);
        return res;
      },
      (err: unknown) => {
        report(err);
        throw err;
      },
    );
  };
}
