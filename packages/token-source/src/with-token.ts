import { Code, ConnectError } from "@connectrpc/connect";
import type { SourceCore } from "./core.js";

/**
 * The stale errcode a WeChat call ended with, if any: WeChat's JSON answer
 * (`{ errcode: 40001, ... }`), or an error an SDK threw carrying it (as
 * `errcode`, or as a numeric `code` like co-wechat-api's WeChatAPIError).
 */
export function staleErrcodeOf(outcome: unknown, stale: readonly number[]): number | undefined {
  if (typeof outcome !== "object" || outcome === null) return undefined;
  const { errcode, code } = outcome as { errcode?: unknown; code?: unknown };
  if (typeof errcode === "number") return stale.includes(errcode) ? errcode : undefined;
  if (outcome instanceof Error && typeof code === "number" && stale.includes(code)) return code;
  return undefined;
}

/** Refusals no other replica answers differently. */
const FINAL = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.ResourceExhausted,
]);

/**
 * Reports a rejected token to the broker (InvalidateToken, compare-and-refresh),
 * once per value however many calls of this source saw it rejected, and
 * takes the token the broker answers with.
 */
export class RejectionReports {
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(private readonly core: SourceCore) {}

  report(value: string, errcode: number): Promise<void> {
    let pending = this.#inFlight.get(value);
    if (!pending) {
      pending = this.#send(value, errcode).finally(() => this.#inFlight.delete(value));
      this.#inFlight.set(value, pending);
    }
    return pending;
  }

  async #send(value: string, errcode: number): Promise<void> {
    const { core } = this;
    for (let i = 0; i < core.replicas.size && !core.closed.aborted; i++) {
      const connection = core.replicas.take();
      try {
        const res = await connection.client.invalidateToken(
          { ...core.request, rejectedValue: value, errcode },
          // A report may wait for WeChat: allow it the broker's upstream timeout and more.
          { timeoutMs: core.tuning.callTimeoutMs * 3, signal: core.closed },
        );
        core.offer(res.token, "InvalidateToken");
        return;
      } catch (err) {
        if (core.closed.aborted) return;
        core.report(err, `InvalidateToken on ${connection.address}`);
        if (FINAL.has(ConnectError.from(err).code)) return;
      }
    }
  }
}
