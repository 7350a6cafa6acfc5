/**
 * When each credential's next proactive refresh is due, and who runs it.
 * Single node: a timer per credential. Many replicas: a sorted set in Redis
 * from which replicas claim due entries, so each refresh runs on exactly one
 * replica and no replica keeps a timer per credential.
 */
export interface DueQueue {
  /** Sets (or moves) the due time of `id`. */
  plan(id: string, at: number): Promise<void>;
  /** Sets the due time of `id` only if it has none (another replica may have planned it). */
  planIfAbsent(id: string, at: number): Promise<void>;
  /** Starts handing due ids to `handler`; each id goes to one replica, which must `release` it. */
  start(handler: (id: string) => void): void;
  /** The handler is done with `id` (its next due time is planned, or it is dropped). */
  release(id: string): Promise<void>;
  /** The due time of `id`, if known locally (for status and tests). */
  dueAt(id: string): number | undefined;
  close(): Promise<void>;
}
