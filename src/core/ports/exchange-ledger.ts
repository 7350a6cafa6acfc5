/**
 * Where code exchanges are claimed and their outcomes kept, so that a code
 * reaches WeChat once however many callers and replicas present it (WeChat
 * accepts a code once: a second use is 40163). Ids are digests of the app
 * and code, never the code itself.
 */

/** What `claim` found. */
export type ExchangeClaim =
  /** The caller holds the exchange: call WeChat, then `settle`. */
  | { readonly state: "claimed" }
  /** Another caller holds it and has not settled yet: wait and claim again. */
  | { readonly state: "pending" }
  /** Settled: the outcome and the client it belongs to. */
  | { readonly state: "settled"; readonly owner: string; readonly outcome: string };

export interface ExchangeLedger {
  /**
   * Claims exchange `id` for `owner` (the client identity) unless it is
   * claimed or settled. A claim lapses after `claimTtlMs` (its holder died
   * before settling): the next caller claims it again, and WeChat answers
   * that one (40163 if the dead holder had used the code).
   */
  claim(id: string, owner: string, claimTtlMs: number): Promise<ExchangeClaim>;
  /**
   * Records the outcome of a claimed exchange for `keepMs` (the code's
   * life). `outcome` is sealed at rest like credential values: it holds the
   * user's access token.
   */
  settle(id: string, owner: string, outcome: string, keepMs: number): Promise<void>;
  /**
   * Gives up `owner`'s claim without an outcome, when WeChat was not called
   * (an open circuit): the code is unused and the next caller may claim it.
   */
  release(id: string, owner: string): Promise<void>;
}
