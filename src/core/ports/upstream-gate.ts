/**
 * How a credential kind reaches WeChat: every call goes through the gate,
 * which applies the quota ledger, the circuit breaker of the account and
 * endpoint, inline retries and metrics. Implemented by upstream/UpstreamGuard.
 */

/** Who asks for a call: "report" for refreshes caused by InvalidateToken (kept off the scheduled reserve). */
export type CallPurpose = "any" | "report";

export interface GateOptions {
  /** Retry WeChat's own faults inline (a caller is waiting). */
  readonly retries: boolean;
  readonly signal: AbortSignal;
  /** What WeChat's quota errcode blocks in the ledger (default: the endpoint itself). */
  readonly blocks?: string;
  readonly purpose?: CallPurpose;
  /** The group whose shared budget the call also counts against (a WeCom app's corp). */
  readonly group?: string;
}

export interface UpstreamGate {
  /** Runs `fn` (one call of `endpoint` for the account `appId`) under quota, breaker and retries. */
  call<T>(appId: string, endpoint: string, fn: () => Promise<T>, options: GateOptions): Promise<T>;
}
