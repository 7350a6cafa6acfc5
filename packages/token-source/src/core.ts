import type { Clock } from "./clock.js";
import type { Token, TokenKind } from "./gen/tokenbroker/v1/token_service_pb.js";
import type { HeldToken } from "./held-token.js";
import type { TokenSourceTuning } from "./options.js";
import type { Replicas } from "./replicas.js";

/** What the source's parts (stream loop, watchdog, acker) share. */
export interface SourceCore {
  readonly clock: Clock;
  readonly random: () => number;
  readonly tuning: Required<TokenSourceTuning>;
  readonly request: { readonly appId: string; readonly kind: TokenKind; readonly subject: string };
  readonly replicas: Replicas;
  /** Aborted when the source closes. */
  readonly closed: AbortSignal;
  held(): HeldToken | undefined;
  /**
   * A token the broker sent: adopted when newer than the held one, or, for
   * the held version, taken as the broker's latest word on its times.
   * Returns true when it is a new version.
   */
  offer(token: Token | undefined, via: string, previousValidUntil?: number): boolean;
  report(error: unknown, during: string): void;
}
